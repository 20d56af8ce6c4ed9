"""The reproduction harness: manifests, `reproduce` (smoke: all 40 Table 2 runs), `table`, offline sweeps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from gpu_machine import gpu_machine_site
from helpers import QUIET, REPO, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.commands import main
from vmp_lightning.config_sources import command_arguments
from vmp_lightning.errors import ConfigError
from vmp_lightning.harness import load_manifest
from vmp_lightning.harness.manifest import ManifestError
from vmp_lightning.harness.reproduce import Options, RunNotReady, fit_arguments, reproduce, run_metrics
from vmp_lightning.harness.sweep import _trials, agent_command, cli_arguments, grid, load_sweep, run_sweep
from vmp_lightning.harness.table import DifferentTestVideos, write_table
from vmp_lightning.parsing import expand_environment

EXPERIMENTS = REPO / "experiments"
MANIFESTS = sorted([*EXPERIMENTS.glob("*.yaml"), *EXPERIMENTS.glob("ablations/*.yaml")])
SWEEPS = sorted(EXPERIMENTS.glob("sweeps/*.yaml"))


@pytest.fixture(scope="module")
def parser(synthetic_root):
    """The CLI's parser (built once: building instantiates a model and data)."""
    return build_cli([*tiny_data_args(synthetic_root), "--trainer.logger=false"], run=False).parser


def test_table2_is_40_runs_composed_of_dataset_backbone_recipe_and_switch():
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    assert len(manifest.runs) == 40 and len({r.name for r in manifest.runs}) == 40
    assert {r.dataset for r in manifest.runs} == {"hmdb51_s1", "hmdb51_s2", "hmdb51_s3", "finegym", "mpii_cooking2"}
    fast = manifest.run("slowfast+vmp_fast", "hmdb51_s2")
    assert [Path(c).name for c in fast.configs] == ["hmdb51.yaml", "slowfast_r50.yaml", "slowfast.yaml"]
    assert fast.settings["model.init_args.vmp_sites"] == ["fast"] and fast.paper == (77.4, None)
    assert manifest.run("timesformer+vmp", "mpii_cooking2").paper == (56.6, 84.4)
    assert fast.tags == ["slowfast", "hmdb51_s2", "vmp"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_every_run_of_every_manifest_parses(path, synthetic_root, parser):
    manifest = load_manifest(path)
    for run in manifest.runs:
        data = [] if run.data_root else tiny_data_args(synthetic_root)
        config = parser.parse_args(command_arguments([*run.flags(), *data]))
        assert config.model.init_args.vmp == run.vmp, run.name
        if any("recipes/" in c for c in run.configs):
            assert config.global_batch_size == 64, run.name  # the paper's batch, on any number of devices
        if "timesformer" in run.backbone:
            assert config.model.init_args.reference_luma is True  # as the authors ran it
            assert (config.model.init_args.num_frames, config.data.init_args.stride) == (8, 32), run.name  # 8 x 32
            assert config.data.init_args.target_fps == 30 and config.data.init_args.short_videos == "vmps"
            assert config.model.init_args.lr_scheduler.class_path.endswith("MultiStepLR")
            assert config.model.init_args.lr_scheduler.init_args.milestones == [11, 14]
        if run.dataset.startswith("hmdb51_s"):
            assert config.data.init_args.split == int(run.dataset[-1])
        if manifest.name in ("table1", "table2", "lambda", "pn", "lr"):  # the authors' protocol: no model selection
            assert config.trainer.limit_val_batches == 0, run.name
            if run.dataset.startswith(("hmdb51", "finegym")):
                assert config.data.init_args.val_fraction == 0, run.name  # train on the full training list


def test_runs_need_their_pretrained_file_or_their_source_run(tmp_path):
    table2, table1 = load_manifest(EXPERIMENTS / "table2.yaml"), load_manifest(EXPERIMENTS / "table1.yaml")
    run = table2.run("x3d", "finegym")
    with pytest.raises(RunNotReady, match="set CKPT_ROOT"):
        fit_arguments(table2, run, Options(out=tmp_path))
    with pytest.raises(RunNotReady, match=r"x3d_s.pyth not found \(download: https://dl.fbaipublicfiles"):
        fit_arguments(table2, run, Options(out=tmp_path, ckpt_root=tmp_path))
    (tmp_path / "x3d_s.pyth").write_bytes(b"")
    args = fit_arguments(table2, run, Options(out=tmp_path, ckpt_root=tmp_path, data_root=Path("/data")))
    assert f"--model.init_args.init_checkpoint={tmp_path / 'x3d_s.pyth'}" in args
    assert "--data.init_args.root=/data/finegym" in args and "--test_after_fit=true" in args
    assert "--trainer.logger.init_args.name=table2/x3d/finegym" in args
    second = table1.run("finetuned+vmp", "mpii_cooking2")
    with pytest.raises(RunNotReady, match="starts from finetune/mpii_cooking2, which is not done yet"):
        fit_arguments(table1, second, Options(out=tmp_path))


def test_a_bad_manifest_names_the_entry(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\ndatasets: {d: {}}\nmodels: {b: {extends: a}}\ncolumns: []\n")
    with pytest.raises(ManifestError, match="model b extends a, which is not listed before it"):
        load_manifest(path)
    path.write_text("name: m\ndatasets: {d: {configs: [nowhere.yaml]}}\nmodels: {a: {}}\ncolumns: []\n")
    with pytest.raises(ManifestError, match=r"config file nowhere\.yaml not found"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="no run matches ONLY='x3d'"):
        load_manifest(EXPERIMENTS / "table1.yaml").select("x3d")


def fake_result(folder: Path, acc1: float, acc5: float, url: str = "", videos: list[str] | None = None) -> None:
    folder.mkdir(parents=True)
    record = {"test": {"test/acc1": acc1, "test/acc5": acc5}, "wandb_url": url, "best_checkpoint": None}
    (folder / "metrics.json").write_text(json.dumps(record))
    if videos is not None:  # what a test writes: one row per video
        (folder / "test_predictions.csv").write_text(
            "video_id,label,prediction\n" + "".join(f"{v},0,0\n" for v in videos)
        )


def test_table_puts_ours_beside_the_paper_means_splits_and_marks_missing_runs(tmp_path):
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    out = tmp_path / "runs"
    fake_result(out / "table2/x3d/hmdb51_s1/p/r1", 0.76, 0.9, url="https://wandb.ai/e/p/runs/r1")
    fake_result(out / "table2/x3d/hmdb51_s2/p/r2", 0.70, 0.9)
    fake_result(out / "table2/x3d/mpii_cooking2/p/r3", 0.5, 0.8)
    for split, acc1 in enumerate((0.76, 0.77, 0.78), 1):
        fake_result(out / f"table2/slowfast+vmp_slow_fast/hmdb51_s{split}/p/r", acc1, 0.9)
    md, table = write_table(manifest, out, tmp_path / "results")
    both = next(line for line in md.read_text().splitlines() if line.startswith("| + VMPs (slow & fast) |"))
    assert both.split("|")[5].strip() == "77.0 (76.6, +0.4)"  # the paper's printed mean, not 76.7 recomputed
    assert "81.5 in the paper's Table 2 and 81.8 in its Table 1" in md.read_text()
    x3d = next(line for line in md.read_text().splitlines() if line.startswith("| X3D |"))
    cells = [c.strip() for c in x3d.strip("|").split("|")]
    assert cells[1] == "[76.0](https://wandb.ai/e/p/runs/r1) (75.0, +1.0)"
    assert cells[2] == "70.0 (72.6, -2.6)" and cells[3] == "not run" and cells[4] == "2/3 runs"
    assert cells[5] == "not run" and cells[7:] == ["50.0 (48.4, +1.6)", "80.0 (80.8, -0.8)"]
    rows = {r["run"]: r for r in __import__("csv").DictReader(table.open())}
    assert len(rows) == 40 and rows["table2/x3d/hmdb51_s2"]["diff_acc1"] == "-2.6"
    assert rows["table2/x3d/finegym"]["status"] == "not run"


def test_a_table_whose_rows_were_tested_on_different_videos_is_refused(tmp_path):
    """Baseline and VMP rows of a column must be scored on the same test videos: a video one run dropped or
    replaced is named, and no table is written."""
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    out = tmp_path / "runs"
    videos = [f"brush_hair/v{i}" for i in range(6)]
    fake_result(out / "table2/x3d/hmdb51_s1/p/r1", 0.76, 0.9, videos=videos)
    fake_result(out / "table2/x3d+vmp/hmdb51_s1/p/r2", 0.78, 0.9, videos=videos)
    fake_result(out / "table2/timesformer/hmdb51_s1/p/r3", 0.7, 0.9, videos=[*videos[:4], "brush_hair/v0"])
    fake_result(out / "table2/x3d/finegym/p/r4", 0.5, 0.8, videos=["other/v0"])  # another column: other videos
    with pytest.raises(DifferentTestVideos, match=r"on 6 videos, table2/timesformer/hmdb51_s1 on 4; not in both: "):
        write_table(manifest, out, tmp_path / "results")
    assert not (tmp_path / "results" / "table2.md").exists()
    (out / "table2/timesformer/hmdb51_s1/p/r3/test_predictions.csv").unlink()  # tested on what? not compared
    md, _ = write_table(manifest, out, tmp_path / "results")
    assert "78.0 (" in md.read_text() and "70.0 (" in md.read_text()


def test_table1_starts_from_the_last_checkpoint_of_the_run_it_extends(tmp_path, monkeypatch):
    """No validation in the paper's protocol: the run Table 1's *** variants start from is tested on, and hands on,
    its last checkpoint."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    manifest = load_manifest(EXPERIMENTS / "table1.yaml")
    options = Options(out=tmp_path / "runs", smoke=True, in_process=main)
    assert reproduce(manifest, options, only="finetune/,finetuned+vmp/") == {
        "finetune/mpii_cooking2": "done",
        "finetuned+vmp/mpii_cooking2": "done",
    }
    source = run_metrics(tmp_path / "runs" / "table1" / "finetune" / "mpii_cooking2")
    assert Path(source["best_checkpoint"]).name == "last.ckpt" and source["monitor"] is None
    started = run_metrics(tmp_path / "runs" / "table1" / "finetuned+vmp" / "mpii_cooking2")
    config = yaml.safe_load((Path(started["path"]).parent / "config.yaml").read_text())
    assert config["model"]["init_args"]["init_checkpoint"] == source["best_checkpoint"]


@pytest.mark.slow
def test_smoke_reproduces_all_of_table2_and_resumes(tmp_path, monkeypatch):
    """make reproduce-table2 SMOKE=1: every run fits and tests on synthetic videos in its dataset's layout, the
    table is complete; a second call skips finished runs; a run whose result is lost resumes its own run."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    options = Options(out=tmp_path / "runs", smoke=True, in_process=main)
    status = reproduce(manifest, options)
    assert list(status.values()) == ["done"] * 40
    md, _ = write_table(manifest, options.out, tmp_path / "results")
    table, gains = md.read_text().split("Gain of each VMP row")
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == 8 and not [row for row in rows if "not run" in row or "runs |" in row]
    assert len([row for row in rows if row.startswith("| +")]) == 5
    gain_rows = [line for line in gains.splitlines() if line.startswith("| +")]  # each VMP row over its baseline
    assert len(gain_rows) == 5 and all(row.count(" [") == 8 for row in gain_rows)
    run = manifest.run("slowfast+vmp_slow_fast", "mpii_cooking2")
    record = run_metrics(tmp_path / "runs" / "table2" / run.name)
    folder = Path(record["path"]).parent
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model"]["init_args"]["vmp_sites"] == ["slow", "fast"]
    assert config["data"]["class_path"].endswith("MPIICooking2DataModule")
    assert (folder / "test_predictions.csv").is_file() and 0 <= record["test"]["test/acc1"] <= 1
    assert Path(record["best_checkpoint"]).name == "last.ckpt" and record["monitor"] is None  # no model selection
    assert "- Tested: the last checkpoint (last.ckpt), no validation, 40 runs." in md.read_text()
    assert reproduce(manifest, options, only="x3d") == {r.name: "skipped" for r in manifest.select("x3d")}
    (folder / "metrics.json").unlink()
    assert reproduce(manifest, options, only=run.name) == {run.name: "done"}
    again = run_metrics(tmp_path / "runs" / "table2" / run.name)
    assert again["run_id"] == record["run_id"] and Path(again["path"]).parent == folder


@pytest.mark.slow
def test_a_real_experiment_config_runs_under_two_process_ddp(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    options = Options(out=tmp_path / "runs", smoke=True, devices="2", extra=("--trainer.strategy=ddp",))
    assert reproduce(manifest, options, only="x3d+vmp/hmdb51_s1") == {"x3d+vmp/hmdb51_s1": "done"}
    captured = capfd.readouterr()  # the DDP processes' log lines go to their stderr
    assert "effective batch 6 = 2 processes x batch 3 x 1 accumulated" in captured.out + captured.err


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_the_command_a_wandb_agent_builds_parses(path, synthetic_root, parser, monkeypatch):
    """W&B's agent starts the command without a shell: $DATA_ROOT and $CKPT_ROOT are expanded by the CLI; a sweep
    on real data starts from the pretrained checkpoint, in the project, scored by each trial's best epoch."""
    sweep = load_sweep(path)
    parameters = grid(sweep)[1] if sweep["method"] == "grid" else next(_trials(sweep, 1, seed=0))[0]
    command = agent_command(sweep, parameters)
    assert command[:2] == ["/usr/bin/env", "vmp-lightning"] and command[-len(parameters) :] == [
        f"--{k}={v}" for k, v in parameters.items()
    ]
    assert sweep["project"] == "vmp-lightning" and sweep["metric"]["name"] == "val/acc1_best"
    monkeypatch.setenv("DATA_ROOT", "/data")
    monkeypatch.setenv("CKPT_ROOT", "/ckpt")
    args = expand_environment(cli_arguments(command))
    assert args[0] == "fit"
    real_data = any("configs/data" in a for a in args)
    config = parser.parse_args(command_arguments([*args[1:], *([] if real_data else tiny_data_args(synthetic_root))]))
    if real_data:
        assert config.data.init_args.root.startswith("/data/")
        assert config.model.init_args.init_checkpoint == "/ckpt/TimeSformer_divST_8x32_224_K600.pyth"
        monkeypatch.delenv("CKPT_ROOT")
        with pytest.raises(ConfigError, match=r"init_checkpoint: the environment variable CKPT_ROOT is not set"):
            expand_environment(cli_arguments(command))
    for name, value in parameters.items():
        node = config
        for part in name.split("."):
            node = node[part]
        assert node == pytest.approx(value), name


def test_random_and_bayes_draws_stay_in_their_space():
    sweep = load_sweep(EXPERIMENTS / "sweeps" / "lr_lambda_bayes.yaml")
    found = []
    for parameters, (study, trial) in _trials(sweep, 6, seed=0):
        lr, lam = parameters["model.init_args.optimizer.init_args.lr"], parameters["model.init_args.lambda_v"]
        assert 0.0005 <= lr <= 0.05 and 0.0 <= lam <= 5.0
        study.tell(trial, -((math.log10(lr) + 2) ** 2) - (lam - 1) ** 2)
        found.append(parameters)
    assert len({tuple(p.values()) for p in found}) == 6
    random_sweep = load_sweep(EXPERIMENTS / "sweeps" / "synthetic_lambda.yaml")
    first = [p for p, _ in _trials(random_sweep, 4, seed=3)]
    assert first == [p for p, _ in _trials(random_sweep, 4, seed=3)]
    assert all(p["model.init_args.lambda_v"] in (0.0, 0.5, 1.0, 2.0) for p in first)
    assert all(0.3 <= p["model.init_args.prompt_lr_scale"] <= 10.0 for p in first)


def test_an_offline_sweep_runs_its_trials_and_resumes(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    tiny = (*tiny_data_args(synthetic_root), "--trainer.max_epochs=1", "--trainer.limit_val_batches=1", *QUIET)
    path = EXPERIMENTS / "sweeps" / "synthetic_lambda.yaml"
    rows = run_sweep(path, tmp_path, max_trials=2, extra=tiny, seed=1, in_process=main)
    assert [r["trial"] for r in rows] == [0, 1] and all(0.0 <= r["val/acc1_best"] <= 1.0 for r in rows)
    summary = (tmp_path / "synthetic-lambda" / "summary.csv").read_text().splitlines()
    assert summary[0] == "trial,model.init_args.lambda_v,model.init_args.prompt_lr_scale,val/acc1_best,status,folder"
    saved = [yaml.safe_load(next(Path(r["folder"]).glob("*/*/config.yaml")).read_text()) for r in rows]
    assert [s["model"]["init_args"]["lambda_v"] for s in saved] == [r["model.init_args.lambda_v"] for r in rows]
    stamps = [next(Path(r["folder"]).glob("*/*/metrics.json")).stat().st_mtime for r in rows]
    assert (
        run_sweep(path, tmp_path, max_trials=2, extra=tiny, seed=1, in_process=main) == rows
    )  # done trials are not re-run
    assert stamps == [next(Path(r["folder"]).glob("*/*/metrics.json")).stat().st_mtime for r in rows]


def test_the_gpu_smoke_benchmarks_flags_run_on_the_cpu(tmp_path, monkeypatch):
    """benchmarks/gpu_smoke.py's settings, with the accelerator swapped for the CPU and one epoch."""
    import sys

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    import gpu_smoke

    flags = [f for f in gpu_smoke.GPU_FLAGS if "accelerator" not in f and "max_epochs" not in f]
    options = Options(
        in_process=main,
        out=tmp_path,
        smoke=True,
        extra=(*flags, "--trainer.max_epochs=1", "--data.init_args.num_workers=0"),
    )
    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    assert reproduce(manifest, options, only=gpu_smoke.RUN) == {gpu_smoke.RUN: "done"}
    sys.modules.pop("gpu_smoke")


@pytest.mark.parametrize(
    ("only", "count"),
    [
        ("timesformer/hmdb51_s1", 1),  # one cell, as the docs say
        ("timesformer", 10),  # a model with its +vmp variant, every dataset
        ("slowfast+vmp_fast", 5),
        ("hmdb51_s1", 8),  # a dataset, every model
        ("x3d*/hmdb51_s?", 6),
        ("finegym,mpii_cooking2", 16),  # alternatives
        ("slowfast/", 5),  # a model alone, no variant
    ],
)
def test_only_patterns_select_cells_models_and_datasets(only, count):
    manifest = load_manifest(EXPERIMENTS / "table2.yaml", seeds=[0, 1])
    assert len(manifest.select(only)) == 2 * count  # every seed of what matches


def test_dry_run_lines_run_unchanged_in_a_shell(tmp_path, capsys):
    import shlex
    import subprocess

    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    options = Options(out=tmp_path / "runs", smoke=True, dry_run=True)
    reproduce(manifest, options, only="x3d+vmp/hmdb51_s1,timesformer/finegym")
    lines = [
        line.split(": vmp-lightning ", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if ": vmp-lightning " in line
    ]
    assert len(lines) == 2
    for line in lines:
        assert subprocess.run(["bash", "-n", "-c", f"vmp-lightning {line}"]).returncode == 0
        args = shlex.split(line)
        assert args == fit_arguments(manifest, manifest.select(args_run(args))[0], options)
        assert any(a.startswith("--trainer.logger.init_args.tags=[") for a in args)


def args_run(args: list[str]) -> str:
    name = next(a for a in args if a.startswith("--trainer.logger.init_args.name="))
    return name.split("=", 1)[1].split("/", 1)[1]  # <manifest>/<model>/<dataset>


def test_table_finds_the_smoke_runs_with_smoke_and_says_where_they_are_without(tmp_path, capsys):
    out = tmp_path / "runs"
    fake_result(out / "smoke" / "table2/x3d/hmdb51_s1/p/r1", 0.5, 0.9)
    args = ["table", str(EXPERIMENTS / "table2.yaml"), "--out", str(out), "--results", str(tmp_path / "results")]
    main(args)
    assert f"its smoke runs are in {out / 'smoke'}: add --smoke" in capsys.readouterr().out
    main([*args, "--smoke"])
    x3d = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| X3D |"))
    assert "50.0" in x3d


def test_the_slurm_template_starts_the_rows_fit_with_its_recipe_checkpoint_and_data(tmp_path):
    """experiments/cluster/slurm.sbatch under a fake srun that records what it is given: the Table 2 row's fit as
    the harness runs it (the recipe's precision kept, the checkpoint from CKPT_ROOT, absolute data root, the run
    id of the row), on SLURM's nodes and tasks."""
    import os
    import shlex
    import subprocess

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "TimeSformer_divST_8x32_224_K600.pyth").write_bytes(b"PK\x03\x04")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path / "srun_args"}\n')
    (bin_dir / "srun").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DATA_ROOT": str(tmp_path / "data"),
        "CKPT_ROOT": str(tmp_path / "ckpt"),
        "SLURM_NTASKS_PER_NODE": "4",
        "SLURM_NNODES": "2",
    }
    (tmp_path / "data").mkdir()
    done = subprocess.run(
        ["bash", "experiments/cluster/slurm.sbatch"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    args = (tmp_path / "srun_args").read_text().splitlines()
    assert args[:2] == [".venv/bin/vmp-lightning", "fit"]
    assert "--config=experiments/recipes/timesformer.yaml" in " ".join(args) and not any("precision" in a for a in args)
    assert f"--model.init_args.init_checkpoint={tmp_path / 'ckpt' / 'TimeSformer_divST_8x32_224_K600.pyth'}" in args
    assert f"--data.init_args.root={tmp_path / 'data' / 'hmdb51'}" in args
    assert "--trainer.devices=4" in args and "--trainer.num_nodes=2" in args
    assert any(a.startswith("--run_id=table2-timesformer+vmp-hmdb51_s1-") for a in args)
    assert shlex.split(shlex.join(args)) == args


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, squeue and srun on PATH that record what they are given: sbatch answers with job ids 101, 102, ...
    and adds them to ``queued``; squeue lists the jobs named in ``queued`` as PENDING."""
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/bash\nn=$(( $(ls {bin_dir}/*.sbatch 2>/dev/null | wc -l) + 101 ))\ncp "$1" {bin_dir}/$n.sbatch\n'
        f'echo "$1" >> {log}\necho $n >> {tmp_path / "queued"}\necho "Submitted batch job $n"\n'
    )
    (bin_dir / "squeue").write_text(f'#!/bin/bash\ngrep -qx "$3" {tmp_path / "queued"} 2>/dev/null && echo PENDING\n')
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 1\n")  # submitit checks that it is on a SLURM cluster
    for tool in ("sbatch", "squeue", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return bin_dir


def test_the_slurm_launcher_submits_one_job_per_run_and_never_twice(tmp_path, fake_slurm, capsys):
    """Each run its own job (submitit's files in the run folder), requeueable, with the run's full fit command and
    the nodes and GPUs; a run whose job is still queued is not submitted again; a done run is skipped."""
    import pickle

    from vmp_lightning.harness.slurm import FitJob, SlurmOptions

    manifest = load_manifest(EXPERIMENTS / "table2.yaml")
    slurm = SlurmOptions(partition="gpu", nodes=2, gpus_per_node=4, time_min=600)
    options = Options(out=tmp_path / "runs", smoke=True, in_process=main, slurm=slurm)
    only = "x3d/hmdb51_s1,x3d+vmp/hmdb51_s1"
    assert reproduce(manifest, options, only=only) == {
        "x3d/hmdb51_s1": "submitted: SLURM job 101",
        "x3d+vmp/hmdb51_s1": "submitted: SLURM job 102",
    }
    script = (fake_slurm / "102.sbatch").read_text()
    for setting in ("--requeue", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu"):
        assert f"#SBATCH {setting}" in script, setting
    assert "#SBATCH --signal=USR2@120" in script and "#SBATCH --time=600" in script
    folder = tmp_path / "runs" / "table2" / "x3d+vmp" / "hmdb51_s1"
    assert (folder / "slurm_job_id").read_text().strip() == "102"
    (submitted,) = (folder / "slurm").glob("*_submitted.pkl")
    job = pickle.loads(submitted.read_bytes()).function
    assert isinstance(job, FitJob) and job.entry is main
    run = manifest.run("x3d+vmp", "hmdb51_s1")
    assert job.args == [*fit_arguments(manifest, run, options), "--trainer.devices=4", "--trainer.num_nodes=2",
                        "--trainer.strategy=ddp"]  # fmt: skip
    (tmp_path / "queued").write_text("102\n")  # 101 finished (squeue no longer lists it), 102 waits
    again = reproduce(manifest, options, only=only)  # 101 ended without a result: reported, not resubmitted
    assert again["x3d/hmdb51_s1"].startswith("failed: SLURM job 101 ended without finishing the run")
    assert again["x3d+vmp/hmdb51_s1"] == "queued: SLURM job 102"
    options.retry_failed = True
    again = reproduce(manifest, options, only=only)
    assert again == {"x3d/hmdb51_s1": "submitted: SLURM job 103", "x3d+vmp/hmdb51_s1": "queued: SLURM job 102"}
    fake_result(tmp_path / "runs" / "table2" / "x3d" / "hmdb51_s1" / "p" / "r", 0.5, 0.9)
    assert reproduce(manifest, options, only=only)["x3d/hmdb51_s1"] == "skipped"


def test_under_slurm_a_run_from_another_runs_checkpoint_waits_for_that_job_and_takes_its_best_checkpoint(
    tmp_path, fake_slurm
):
    """Table 1's *** runs under the SLURM launcher: one `reproduce` submits the fine-tune and, after it
    (afterok, cancelled if it fails), the run that starts from its best checkpoint, which the job looks up when it
    starts; while the fine-tune is neither queued nor done, the run is not submitted."""
    import pickle

    from vmp_lightning.harness.reproduce import RunNotReady
    from vmp_lightning.harness.slurm import SlurmOptions

    manifest = load_manifest(EXPERIMENTS / "table1.yaml")
    options = Options(out=tmp_path / "runs", smoke=True, in_process=main, slurm=SlurmOptions())
    assert reproduce(manifest, options, only="finetune/mpii_cooking2,finetuned+vmp/mpii_cooking2") == {
        "finetune/mpii_cooking2": "submitted: SLURM job 101",
        "finetuned+vmp/mpii_cooking2": "submitted: SLURM job 102 (starts after job 101)",
    }
    script = (fake_slurm / "102.sbatch").read_text()
    assert "#SBATCH --dependency=afterok:101" in script and "#SBATCH --kill-on-invalid-dep=yes" in script
    assert "--dependency" not in (fake_slurm / "101.sbatch").read_text()
    folder = tmp_path / "runs" / "table1" / "finetuned+vmp" / "mpii_cooking2"
    (submitted,) = (folder / "slurm").glob("*_submitted.pkl")
    job = pickle.loads(submitted.read_bytes()).function
    assert not any("init_checkpoint" in arg for arg in job.args)
    with pytest.raises(RunNotReady, match="starts from finetune/mpii_cooking2, which is not done yet"):
        job.late_args()
    source = tmp_path / "runs" / "table1" / "finetune" / "mpii_cooking2" / "p" / "r"
    source.mkdir(parents=True)
    record = {"test": {"test/acc1": 0.5}, "best_checkpoint": "/ckpt/best.ckpt"}
    (source / "metrics.json").write_text(json.dumps(record))
    seen = []
    type(job)(job.args, seen.append, job.late_args)()  # as the job runs once the fine-tune is done
    assert seen == [[*job.args, "--model.init_args.init_checkpoint=/ckpt/best.ckpt"]]
    assert job.checkpoint().function.late_args is job.late_args  # a requeued job looks it up again
    (source / "metrics.json").unlink()
    (tmp_path / "queued").write_text("")  # the fine-tune's job ended without a result
    again = reproduce(manifest, options, only="finetuned+vmp/mpii_cooking2")
    assert again == {"finetuned+vmp/mpii_cooking2": "failed: finetuned+vmp/mpii_cooking2 starts from "
                     "finetune/mpii_cooking2, which is not done yet"}  # fmt: skip


def test_a_fit_job_stopped_by_the_preemption_callback_hands_the_signal_back_to_submitit(monkeypatch):
    """Rank 0 of a job whose fit saved and exited 143 raises submitit's signal (its handler requeues); an error
    stays an error; rank 1 does not requeue."""
    import signal
    import sys

    from vmp_lightning.harness.slurm import FitJob

    heard = []
    previous = signal.signal(signal.SIGUSR2, lambda number, frame: heard.append(number))
    try:
        monkeypatch.setenv("SLURM_PROCID", "0")
        with pytest.raises(SystemExit) as stop:
            FitJob(["fit"], lambda args: sys.exit(143))()
        assert stop.value.code == 143 and heard == [signal.SIGUSR2]
        monkeypatch.setenv("SLURM_PROCID", "1")
        with pytest.raises(SystemExit):
            FitJob(["fit"], lambda args: sys.exit(143))()
        assert heard == [signal.SIGUSR2]
        FitJob(["fit"], lambda args: None)()  # a finished fit: nothing raised
        assert isinstance(FitJob(["fit"], main).checkpoint().function, FitJob)
    finally:
        signal.signal(signal.SIGUSR2, previous)


def wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel of an installed distribution, made from its RECORD: what `pip wheel` gives for a pure package."""
    import importlib.metadata
    import zipfile

    dist = importlib.metadata.distribution(name)
    wheel = folder / f"{name}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for file in dist.files:
            if not str(file).startswith("..") and "__pycache__" not in str(file):
                archive.write(file.locate(), str(file))
    return wheel


@pytest.mark.slow
def test_the_gpu_benchmark_runs_on_a_bare_gpu_machine_with_the_carried_wheels_and_says_in_one_line_what_is_missing(
    tmp_path,
):
    """make bench-gpu where only the GPU machine's own packages are installed (python -S, tests/gpu_machine.py's
    links on the path): without a GPU, one line; without the carried wheels, one line naming them and
    `make gpu-wheels`; with them, --smoke runs every part (steps with and without VMPs through pytorchvideo's X3D,
    the prompt layer's bandwidth) from src/, benchmarks/ and the unpacked wheels."""
    import os
    import subprocess
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from gpu_step import CARRIED
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    site = gpu_machine_site(tmp_path / "site-packages")
    env = {**os.environ, "PYTHONPATH": f"{site}:{REPO / 'src'}:{REPO / 'benchmarks'}", "CUDA_VISIBLE_DEVICES": ""}
    gpu_machine = [sys.executable, "-S", str(REPO / "benchmarks" / "gpu_step.py")]
    wheels, out = tmp_path / "wheels", tmp_path / "gpu_step"
    wheels.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*gpu_machine, *args], env=env, capture_output=True, text=True)

    refused = run("--wheels", str(wheels))
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        "gpu_step.py: no CUDA GPU here (torch.cuda.is_available() is False); --smoke runs it on the CPU"
    ]
    smoke = ["--smoke", "--repeats", "2", "--only", "x3d", "--out", str(out), "--wheels", str(wheels)]
    missing = run(*smoke)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"gpu_step.py: {', '.join(CARRIED)} not importable and not in {wheels}; run `make gpu-wheels` where the "
        "package registries are reachable and carry that folder"
    ]
    for name in CARRIED:
        wheel_of_installed(name, wheels)
    done = run(*smoke)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (wheels / "site" / "pytorchvideo" / "models" / "x3d.py").is_file()
    record = json.loads(out.with_name("gpu_step_smoke.json").read_text())
    assert [r["vmp"] for r in record["rows"]] == ["input"] and record["prompt_bandwidth"]["fraction_of_copy"] > 0
    assert "of this card's copy bandwidth" in out.with_name("gpu_step_smoke.md").read_text()
