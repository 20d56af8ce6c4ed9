"""Where the settings of ``fit | validate | test | predict`` come from, before LightningCLI parses them.

- The demo (`DEMO_CONFIG`: synthetic motion videos, a tiny 3D CNN) fills only the sections a user leaves to it. A
  section whose class the user names (`CLASS_SECTIONS`: in a ``--config`` file or a flag) starts from that class's
  own defaults: jsonargparse would otherwise carry the demo class's init args over to the new class wherever the
  names agree (omni-us/jsonargparse#460), and a user's video list would train on the demo's 56-pixel crops.
- ``test | validate | predict --ckpt_path <run>/checkpoints/<file>.ckpt`` without ``--config`` reads that run's
  ``config.yaml``: the run's data, not the demo's.
- A run config saved by an earlier version is brought up to date (`migration.migrate_config`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import yaml

from vmp_lightning.errors import ConfigError
from vmp_lightning.migration import migrate_config
from vmp_lightning.parsing import expand_environment, read_yaml
from vmp_lightning.runs import RunFolder

DEMO_CONFIG = str(files("vmp_lightning") / "configs" / "default.yaml")

#: The sections a user may give a class of their own; each starts from its class's defaults when they do.
CLASS_SECTIONS = ("data", "model", "model.backbone", "model.optimizer", "model.lr_scheduler")

#: The subcommands of LightningCLI; the rest of `vmp-lightning` parses its own arguments.
SUBCOMMANDS = ("fit", "validate", "test", "predict")

#: Settings the CLI computes from others (its links): set by hand they would be overwritten, so they are refused.
LINKED = {
    "data.frames_per_clip": "model.num_frames and model.vmp (T, plus the frame the motion prompt consumes)",
    "model.num_classes": "data.num_classes (the data module's classes)",
}


def command_arguments(args: list[str]) -> list[str]:
    """``args`` (``[subcommand, ...]``, or a subcommand's arguments alone) as LightningCLI is to parse them: ``$VARS``
    expanded, linked settings refused, a run's checkpoint with its run's config, earlier versions' configs migrated,
    and the demo's settings first for every section the user leaves to it."""
    args = expand_environment(list(args))
    start = 1 if args and args[0] in SUBCOMMANDS else 0
    subcommand, own = (args[0] if start else None), args[start:]
    refuse_linked_settings(own)
    if subcommand in ("validate", "test", "predict"):
        own = with_run_config(own, subcommand)
    own = up_to_date_configs(own)
    demo = demo_config(named_sections(own))
    return [*args[:start], f"--config={yaml.safe_dump(demo, sort_keys=False)}", *own]


def named_sections(args: list[str]) -> set[str]:
    """The `CLASS_SECTIONS` whose class ``args`` name: ``--data X``, ``--data.class_path X``, ``--model.backbone X``
    (``init_args`` may stand between), or a ``class_path`` (or class name) for the section in a ``--config``."""
    named = set()
    for config in _configs(args):
        named |= {section for section in CLASS_SECTIONS if _names_class(_section(config, section))}
    for arg in args:
        flag = arg.split("=", 1)[0].lstrip("-").replace(".init_args", "").removesuffix(".class_path")
        if arg.startswith("--") and flag in CLASS_SECTIONS:
            named.add(flag)
    return named


def demo_config(named: set[str]) -> dict:
    """The demo's config without the sections in ``named`` (a named model keeps the demo's backbone, optimizer and
    scheduler unless those are named too)."""
    demo = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    if "data" in named:
        del demo["data"]
    model = demo["model"]
    own = {key: value for key, value in model["init_args"].items() if f"model.{key}" in CLASS_SECTIONS}
    if "model" in named:
        model["init_args"] = dict(own)
    for key in own:
        if f"model.{key}" in named:
            del model["init_args"][key]
    return demo


def with_run_config(args: list[str], subcommand: str) -> list[str]:
    """``args`` with the run's ``config.yaml`` first when they give a run's checkpoint and no ``--config``."""
    checkpoints = _flag_values("--ckpt_path", args)
    run = RunFolder.of_checkpoint(checkpoints[-1][1]) if checkpoints else None
    if run is None or _flag_values("--config", args):
        return args
    config = run.config
    _say(f"{subcommand} reads the run's settings from {config} (give --config to use others)")
    return ["--config", str(config), *args]


def refuse_linked_settings(args: list[str]) -> None:
    """A linked setting given on the command line or in a ``--config`` file is an error naming its link."""
    given = [a.split("=")[0].lstrip("-").replace(".init_args.", ".") for a in args if a.startswith("--")]
    for _, path in config_files(args):
        config = read_yaml(path) or {}
        for section in ("data", "model"):
            values = (config.get(section) or {}) if isinstance(config, dict) else {}
            keys = {**values, **(values.get("init_args") or {})} if isinstance(values, dict) else {}
            given += [f"{section}.{key}" for key in keys]
    for key in given:
        if key in LINKED:
            raise ConfigError(f"{key} is linked from {LINKED[key]}: set those instead")


def up_to_date_configs(args: list[str]) -> list[str]:
    """``args`` with each ``--config`` file that an earlier version saved (a run's ``config.yaml``) replaced by its
    migrated YAML (jsonargparse takes a config's text in place of its path), saying what moved."""
    result = list(args)
    for position, path in config_files(args):
        config = read_yaml(path) or {}
        moved = migrate_config(config) if isinstance(config, dict) else []
        if moved:
            _say(f"{path} was saved by an earlier version; read with: " + "; ".join(moved))
            text = yaml.safe_dump(config)
            result[position] = f"--config={text}" if args[position].startswith("--config=") else text
    return result


def config_files(args: list[str]) -> list[tuple[int, str]]:
    """The ``--config`` files among ``args``: (position of the value in ``args``, path); a config given as YAML text
    is not a file."""
    return [(position, value) for position, value in _flag_values("--config", args) if _is_file(value)]


def _configs(args: list[str]) -> list[dict]:
    """Every ``--config`` among ``args`` read, files and YAML text alike."""
    read = [read_yaml(v) if _is_file(v) else read_yaml(v, "--config text") for _, v in _flag_values("--config", args)]
    return [config for config in read if isinstance(config, dict)]


def _is_file(value: str) -> bool:
    return "\n" not in value and Path(value).is_file()


def _section(config: dict, section: str) -> object:
    """The value a config gives ``section`` (``model.backbone`` with or without ``init_args`` between)."""
    value: object = config
    for key in section.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key, (value.get("init_args") or {}).get(key) if isinstance(value, dict) else None)
    return value


def _names_class(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and "class_path" in value)


def _flag_values(flag: str, args: list[str]) -> list[tuple[int, str]]:
    """Each value of ``flag`` among ``args`` (``--flag v`` or ``--flag=v``): (its position in ``args``, the value)."""
    found = []
    for index, arg in enumerate(args):
        name, inline, value = arg.partition("=")
        if name == flag and (inline or index + 1 < len(args)):
            found.append((index, value) if inline else (index + 1, args[index + 1]))
    return found


def _say(message: str) -> None:
    """One line, from the first process only (each process of a DDP job parses its arguments)."""
    from lightning.pytorch.utilities import rank_zero_info

    rank_zero_info(message)
