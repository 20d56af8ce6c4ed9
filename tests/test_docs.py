"""The manual holds: every relative link resolves, the README stays a short door without figures that go stale, and
every documented command or snippet that runs at tiny size runs (fenced blocks tagged ``tiny``: ```bash tiny)."""

from __future__ import annotations

import re
import shlex

import pytest

from helpers import QUIET, REPO, tiny_data_args
from vmp_lightning.commands import main

PAGES = [
    REPO / "README.md",
    REPO / "CHANGELOG.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "benchmarks" / "README.md",
    REPO / "experiments" / "README.md",
    REPO / "configs" / "table1" / "README.md",
]


def fenced_blocks(path) -> list[tuple[str, str]]:
    """(info string, code) of every fenced block of a Markdown file."""
    return re.findall(r"(?ms)^```([^\n]*)\n(.*?)^```", path.read_text())


def tiny(language: str) -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(REPO)), code)
        for path in PAGES
        for info, code in fenced_blocks(path)
        if info.split() == [language, "tiny"]
    ]


def documented_commands() -> list[tuple[str, str]]:
    """Each ``vmp-lightning`` line of the ``bash tiny`` blocks (continuations joined, comments dropped)."""
    commands = []
    for source, code in tiny("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#\s", line)[0].strip()
            if line.startswith("vmp-lightning"):
                commands.append((source, line))
    return commands


def test_every_relative_link_resolves():
    broken = []
    for path in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            external = target.startswith(("http://", "https://", "mailto:", "#"))
            if not external and not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
    assert not broken


def test_the_readme_is_a_short_door_and_nothing_goes_stale():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for heading in ("Quick start", "Install", "Reproducing the paper", "Map", "Links"):
        assert f"## {heading}" in readme
    assert len(documented_commands()) >= 10 and tiny("python")
    for path in PAGES:
        text = path.read_text()
        assert not re.search(r"\b\d+ tests\b|\b\d+ passed\b|\bthis session\b", text), path.name


@pytest.mark.parametrize(("source", "code"), tiny("python"), ids=lambda value: value[:40])
def test_documented_python_runs(source, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, source, "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(("source", "command"), documented_commands(), ids=lambda value: value[:60])
def test_documented_command_runs_at_tiny_size(source, command, synthetic_root, tmp_path, monkeypatch):
    """The command as written, on the tiny synthetic dataset for one short epoch (training commands), or with its
    outputs in a temporary folder (the harness)."""
    monkeypatch.chdir(REPO)
    argv = shlex.split(command)[1:]
    if argv[0] in ("fit", "demo"):
        argv += [*tiny_data_args(synthetic_root), "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]
        argv += ["--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", *QUIET]
    elif argv[0] in ("table", "reproduce"):
        argv += [f"--out={tmp_path / 'runs'}", f"--results={tmp_path / 'results'}"]
        argv += ["--dry-run"] if argv[0] == "reproduce" else []
    elif "--help" not in argv:
        pytest.fail(f"{source}: no tiny size is known for `{command}`; leave it out of the `bash tiny` block")
    try:
        main(argv)
    except SystemExit as stop:  # --help and --print_config end the command
        assert stop.code in (None, 0), f"{source}: `{command}` exited with {stop.code}"
        return
    runs = {"fit": 1, "demo": 2}.get(argv[0], 0)  # a training command trained: its runs' metrics are written
    assert len(list(tmp_path.rglob("metrics.json"))) == runs
