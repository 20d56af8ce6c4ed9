"""The `vmp-lightning` CLI: links, fit with and without VMPs, bf16, DDP on 2 CPU processes, resume, W&B offline."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import QUIET, REPO, fit_args, run_cli, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.commands import COMMANDS, main
from vmp_lightning.normalization import Normalization


def test_help_lists_every_command_with_one_line_and_works_offline_without_gpu():
    result = run_cli(["--help"], env={"CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS) and len(listed) == len(set(listed))
    result = run_cli(["fit", "--help"], timeout=120)
    assert result.returncode == 0 and "--model" in result.stdout and "--data" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["--help"], ["table", "--help"], ["prepare", "--help"], ["check-videos", "--help"], ["visualize", "--help"]],
)
def test_help_and_the_light_commands_import_no_lightning(command):
    """Only the chosen command's module is imported: --help, table, prepare, check-videos and the analysis commands
    answer --help without torch, Lightning or W&B."""
    code = (
        "import sys\n"
        "from vmp_lightning.commands import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
        "print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'torch', 'wandb'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: vmp-lightning" in result.stdout and result.stdout.rsplit("IMPORTED", 1)[1].strip() == "[]"


def test_every_project_command_takes_a_config_file_and_prints_its_resolved_config(tmp_path, capsys):
    (tmp_path / "table.yaml").write_text("out: my/runs\nresults: my/results\n")
    with pytest.raises(SystemExit) as stop:
        main(["table", "--config", str(tmp_path / "table.yaml"), "experiments/table2.yaml", "--print_config"])
    assert stop.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == {
        "manifest": "experiments/table2.yaml",
        "out": "my/runs",
        "results": "my/results",
        "seeds": None,
        "smoke": False,
    }


def test_mistakes_on_the_command_line_get_a_suggestion_and_abbreviations_are_refused(synthetic_root, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["reprodce", "experiments/table2.yaml"])
    assert stop.value.code == 2 and "unknown command 'reprodce'; did you mean 'reproduce'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["table", "experiments/table2.yaml", "--outt", "x"])
    assert "unrecognized arguments: --outt x; did you mean --out?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["table", "experiments/table2.yaml", "--res", "x"])  # once taken as --results
    assert "did you mean --results?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_cli([*tiny_data_args(synthetic_root), "--trainer.max_ep", "3"], run=False)  # once max_epochs: 3
    assert "unrecognized arguments: --trainer.max_ep 3; did you mean --trainer.max_epochs?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_cli([*tiny_data_args(synthetic_root), "--model.lamda_v", "0.1"], run=False)
    assert "did you mean 'lambda_v'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "link"),
    [("--data.init_args.frames_per_clip=2", "model.num_frames and model.vmp"), ("--model.num_classes=3", "data")],
)
def test_a_linked_setting_set_by_hand_is_an_error_naming_the_link(synthetic_root, tmp_path, capsys, setting, link):
    with pytest.raises(SystemExit) as stop:
        main(["fit", *tiny_data_args(synthetic_root), setting, "--trainer.logger=false"])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert f"is linked from {link}" in error and "set those instead" in error and "Traceback" not in error
    key, value = setting.lstrip("-").replace(".init_args", "").split("=")
    section, name = key.split(".")
    (tmp_path / "mine.yaml").write_text(f"{section}:\n  init_args:\n    {name}: {value}\n")
    with pytest.raises(SystemExit):
        main(["fit", f"--config={tmp_path / 'mine.yaml'}", *tiny_data_args(synthetic_root)])
    assert f"{key} is linked from {link}" in capsys.readouterr().err


@pytest.mark.parametrize("vmp", [False, True])
def test_the_model_owns_the_clip_contract_and_the_data_is_told(synthetic_root, vmp):
    """One switch: ``model.vmp`` (with ``model.num_frames``) sets the frames the data samples; the model's own
    normalisation makes the data's uint8 clips floats; the data tells the model its number of classes."""
    args = [
        *tiny_data_args(synthetic_root),
        "--model.init_args.num_frames=6",
        f"--model.init_args.vmp={str(vmp).lower()}",
        '--model.init_args.normalization={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}',
        "--trainer.logger=false",
    ]
    cli = build_cli(args, run=False)
    assert cli.datamodule.frames_per_clip == cli.model.model.frames_per_clip == (7 if vmp else 6)
    assert cli.model.hparams.num_classes == cli.datamodule.num_classes == 4
    own = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert cli.model.model.normalization == own and cli.model.hparams.normalization == own.as_dict()  # plain YAML
    assert not hasattr(cli.datamodule, "normalization")
    if vmp:
        assert cli.model.model.prompt.normalization == own and cli.model.model.prompt.luma_order == "rgb"
    else:
        assert cli.model.model.prompt is None


@pytest.mark.parametrize("vmp", [False, True])
def test_fit_fast_dev_run_bf16(synthetic_root, tmp_path, vmp):
    cli = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.fast_dev_run=2", f"--model.vmp={str(vmp).lower()}"))
    assert cli.trainer.precision == "bf16-mixed"
    assert cli.trainer.global_step == 2 and cli.trainer.state.finished
    assert "train/loss" in cli.trainer.callback_metrics and "val/acc1" in cli.trainer.callback_metrics
    if vmp:
        assert "prompt/a" in cli.trainer.callback_metrics


def test_fit_fp32_with_lambda_v_and_pn_from_yaml(synthetic_root, tmp_path):
    config = tmp_path / "vmp.yaml"
    config.write_text(
        "model:\n  init_args:\n    vmp: true\n    lambda_v: 0.5\n"
        "    pn:\n      class_path: vmp_lightning.prompt.SigmE\n      init_args: {eta: 15.0, learnable: true}\n"
    )
    args = fit_args(
        synthetic_root, tmp_path, f"--config={config}", "--trainer.fast_dev_run=1", "--trainer.precision=32"
    )
    cli = build_cli(args)
    assert type(cli.model.model.prompt.pn).__name__ == "SigmE" and cli.model.model.prompt.pn.eta.requires_grad
    assert "train/V" in cli.trainer.callback_metrics


def test_resume_from_checkpoint_continues_the_run(synthetic_root, tmp_path):
    first = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1", "--model.vmp=true"))
    steps_per_epoch = first.trainer.global_step
    run = Path(first.trainer.default_root_dir)
    assert run.parent == tmp_path / "runs"
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file() and steps_per_epoch > 0
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] == steps_per_epoch
    resumed = build_cli(
        fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2", "--model.vmp=true", f"--ckpt_path={last}")
    )
    assert resumed.trainer.current_epoch == 2 and resumed.trainer.global_step == 2 * steps_per_epoch
    assert Path(resumed.trainer.default_root_dir) == run and list((tmp_path / "runs").iterdir()) == [run]
    config_saved = run / "config.yaml"
    assert config_saved.is_file() and "vmp: true" in config_saved.read_text()


@pytest.mark.slow
def test_ddp_two_cpu_processes(synthetic_root, tmp_path):
    args = [
        "fit",
        *tiny_data_args(synthetic_root),
        "--model.vmp=true",
        "--model.lambda_v=0.1",
        f"--config={Path(__file__).parents[1] / 'configs' / 'trainer' / 'cpu_ddp.yaml'}",
        "--global_batch_size=8",
        "--trainer.max_epochs=2",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "effective batch 8 = 2 processes x batch 4 x 1 accumulated" in result.stdout + result.stderr
    (metrics_file,) = tmp_path.glob("**/metrics.csv")  # one run folder, shared by both ranks
    metrics = list(csv.DictReader(metrics_file.open()))
    val_rows = [row for row in metrics if row.get("val/acc1")]
    assert len(val_rows) == 2  # one synced value per validation epoch, not one per rank
    assert len([row for row in metrics if row.get("train/acc1")]) == 2  # counted over both ranks, once an epoch
    steps = [int(row["step"]) for row in metrics if row.get("prompt/a")]
    # 24 training videos, batch 4, 2 ranks -> 3 steps per epoch on each rank
    assert max(int(row["step"]) for row in metrics) >= 5 and len(steps) == len(set(steps))
    assert (metrics_file.parent / "config.yaml").is_file()


def test_wandb_goes_offline_without_an_account(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        *tiny_data_args(synthetic_root),
        "--trainer.max_steps=2",
        "--trainer.limit_val_batches=1",
        *QUIET,
    ]
    cli = build_cli(args)
    logger = cli.trainer.logger
    assert logger.offline is True
    run_dir = tmp_path / "runs" / "vmp-lightning" / str(logger.version)
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    logger.experiment.finish()
    assert list((tmp_path / "runs" / "wandb").glob("offline-run-*"))


def test_project_command_dispatch(monkeypatch):
    """A command gets the arguments after its name; fit & co. go to LightningCLI whole."""
    import vmp_lightning.cli
    import vmp_lightning.commands.demo

    called = []
    monkeypatch.setattr(vmp_lightning.commands.demo, "main", lambda argv: called.append(argv))
    monkeypatch.setattr(vmp_lightning.cli, "run", lambda argv: called.append(["lightning", *argv]))
    main(["demo", "--trainer.max_epochs=1"])
    main(["fit", "--trainer.max_epochs=1"])
    assert called == [["--trainer.max_epochs=1"], ["lightning", "fit", "--trainer.max_epochs=1"]]


def test_test_and_predict_rebuild_the_vmp_model_from_the_checkpoint(synthetic_root, tmp_path):
    fit = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1", "--model.vmp=true"))
    last = Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    trained_m = fit.model.model.prompt.pn.m.item()
    common = [*tiny_data_args(synthetic_root), "--trainer.logger=false", *QUIET, f"--ckpt_path={last}"]
    common.append(f"--trainer.default_root_dir={tmp_path / 'eval'}")
    tested = build_cli(["test", *common])  # no --model.vmp: the checkpoint's config says so
    assert tested.model.model.prompt is not None and tested.datamodule.frames_per_clip == 9
    assert tested.model.model.prompt.pn.m.item() == pytest.approx(trained_m)
    assert 0.0 <= tested.trainer.callback_metrics["test/acc1"] <= 1.0
    predicted = build_cli(["predict", *common])
    assert predicted.model.model.prompt is not None
    outputs = predicted.trainer.predict(predicted.model, datamodule=predicted.datamodule, ckpt_path=str(last))
    assert sum(len(batch["video_id"]) for batch in outputs) == 12
    assert outputs[0]["logits"].shape == (4, 4)


def test_validate_subcommand(synthetic_root, tmp_path):
    cli = build_cli(
        [
            "validate",
            *tiny_data_args(synthetic_root),
            "--trainer.logger=false",
            *QUIET,
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert cli.trainer.callback_metrics["val/videos"] == 8 and "val/acc1" in cli.trainer.callback_metrics


def test_missing_dataset_root_is_a_clean_cli_error(tmp_path):
    result = run_cli(["fit", "--data=vmp_lightning.data.HMDB51DataModule", f"--data.root={tmp_path / 'none'}"])
    assert result.returncode == 2
    assert "vmp-lightning: error: missing:" in result.stderr and "Traceback" not in result.stderr
    assert "expected layout" in result.stderr


def test_a_checkpoint_of_version_0_1_tests_and_resumes(synthetic_root, tmp_path):
    """tests/fixtures/checkpoint_v0.ckpt was written by `fit` before the model moved into `PromptedModel`
    (one epoch, VMP on, ``v_normalization: per_pair``, TinyVideoCNN width 4)."""
    old = REPO / "tests" / "fixtures" / "checkpoint_v0.ckpt"
    saved = torch.load(old, weights_only=True)
    assert "backbone.classifier.weight" in saved["state_dict"] and saved["hyper_parameters"]["v_normalization"]
    common = [*tiny_data_args(synthetic_root), "--trainer.logger=false", *QUIET, f"--ckpt_path={old}"]
    tested = build_cli(["test", *common, f"--trainer.default_root_dir={tmp_path / 'test'}"])
    model = tested.model.model
    assert tested.model.hparams.v_reduction == "per_pair" and tested.datamodule.frames_per_clip == 9
    torch.testing.assert_close(model.prompt.pn.m.detach(), saved["state_dict"]["prompts.input.pn.m"])
    assert 0.0 <= tested.trainer.callback_metrics["test/acc1"] <= 1.0
    resumed = build_cli(["fit", *common, "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp_path / 'fit'}"])
    assert resumed.trainer.current_epoch == 2 and resumed.trainer.global_step == 2 * saved["global_step"]
    assert (Path(resumed.trainer.default_root_dir) / "checkpoints" / "last.ckpt").is_file()


def test_a_run_of_version_0_2_tests_and_resumes_with_its_saved_config(synthetic_root, tmp_path, caplog):
    """The command `LatestCheckpoint` prints (``--config <run>/config.yaml --ckpt_path <run>/.../last.ckpt``) works
    for a run saved before the model owned its clip contract: the config's data.num_frames, mean and std move to
    the model, the checkpoint's T comes from its backbone."""
    fixtures = REPO / "tests" / "fixtures"
    old = [f"--config={fixtures / 'checkpoint_v0_2_config.yaml'}", f"--ckpt_path={fixtures / 'checkpoint_v0_2.ckpt'}"]
    here = [f"--data.init_args.root={synthetic_root}", "--trainer.logger=false", *QUIET]
    tested = build_cli(["test", *old, *here, f"--trainer.default_root_dir={tmp_path / 'test'}"])
    assert "saved by an earlier version; read with: data.num_frames -> model.num_frames" in caplog.text
    assert tested.datamodule.frames_per_clip == 5 and tested.model.model.backbone.num_frames == 4
    assert tested.model.model.normalization == Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert tested.trainer.callback_metrics["test/videos"] == 12
    resumed = build_cli(["fit", *old, *here, "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp_path}"])
    assert resumed.trainer.current_epoch == 2


def test_learning_rates_are_logged_per_param_group(synthetic_root, tmp_path):
    steps = ["--trainer.max_steps=2", "--trainer.log_every_n_steps=1"]
    args = fit_args(synthetic_root, tmp_path, "--model.vmp=true", *steps)
    args += ["--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    build_cli(args)
    (metrics_file,) = (tmp_path / "lightning_logs").glob("*/metrics.csv")
    rows = list(csv.DictReader(metrics_file.open()))
    backbone = [float(row["lr/backbone"]) for row in rows if row.get("lr/backbone")]
    prompt = [float(row["lr/prompt"]) for row in rows if row.get("lr/prompt")]
    assert backbone == prompt == [0.003, 0.003]  # AdamW lr 3e-3, prompt_lr_scale 1, one value per step


def test_a_run_started_from_pretrained_weights_moves_without_them(synthetic_root, tmp_path):
    """Testing, resuming and loading a checkpoint never re-read ``init_checkpoint``: its weights are inside."""
    from vmp_lightning.backbones import TinyVideoCNN
    from vmp_lightning.classifier import VideoClassifier

    pretrained = tmp_path / "pretrained.pyth"
    torch.save({"model_state": TinyVideoCNN(4, width=32).state_dict()}, pretrained)
    fit = build_cli(
        fit_args(synthetic_root, tmp_path, f"--model.init_checkpoint={pretrained}", "--trainer.max_epochs=1")
    )
    assert fit.model.checkpoint_report.fraction == 1.0
    pretrained.unlink()  # the evaluating machine has only the run's checkpoint
    last = Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    common = [*tiny_data_args(synthetic_root), "--trainer.logger=false", *QUIET, f"--ckpt_path={last}"]
    tested = build_cli(["test", *common, f"--trainer.default_root_dir={tmp_path / 'test'}"])
    assert tested.model.hparams.init_checkpoint == str(pretrained) and tested.model.checkpoint_report is None
    weight = "model.backbone.classifier.weight"
    torch.testing.assert_close(tested.model.state_dict()[weight], fit.model.state_dict()[weight])
    loaded = VideoClassifier.load_from_checkpoint(last)
    torch.testing.assert_close(loaded.state_dict()[weight], fit.model.state_dict()[weight])
    resumed = build_cli(["fit", *common, "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp_path / 'fit'}"])
    assert resumed.trainer.current_epoch == 2 and Path(resumed.trainer.default_root_dir) == last.parent.parent


def test_the_demo_prints_both_rows(synthetic_root, tmp_path, caplog):
    import logging

    from vmp_lightning.commands import demo

    caplog.set_level(logging.INFO)
    demo.main([*fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1")[1:]])
    table = caplog.text.split("| model | test top-1 (%) | test top-5 (%) |")[1]
    rows = [line for line in table.splitlines() if line.startswith("| TinyVideoCNN")]
    assert len(rows) == 2 and all(0.0 <= float(r.split("|")[2]) <= 100.0 for r in rows)
    assert len(list(tmp_path.glob("runs/*/metrics.json"))) == 2


@pytest.mark.parametrize(("devices", "accumulated"), [(1, 8), (2, 4), (4, 2)])
def test_the_recipes_global_batch_is_kept_on_any_number_of_devices(synthetic_root, devices, accumulated):
    """global_batch_size 64 with batch 8: accumulation follows the devices, once they are known."""
    recipe = REPO / "experiments" / "recipes" / "timesformer.yaml"
    args = [*tiny_data_args(synthetic_root), f"--config={recipe}", "--data.init_args.batch_size=8"]
    args += ["--trainer.accelerator=cpu", f"--trainer.devices={devices}", "--trainer.logger=false"]
    args += ["--trainer.strategy=ddp"] if devices > 1 else []
    cli = build_cli(args, run=False)
    assert cli.trainer.accumulate_grad_batches == accumulated
    assert cli.trainer.world_size * 8 * cli.trainer.accumulate_grad_batches == 64


def test_a_global_batch_the_devices_cannot_make_is_a_one_line_error(synthetic_root, capsys):
    args = ["fit", *tiny_data_args(synthetic_root), "--global_batch_size=64", "--data.init_args.batch_size=6"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--trainer.logger=false"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.count("\n") == 1 and "Traceback" not in error
    assert "global_batch_size 64 is not a multiple of 1 node(s) x 1 device(s) x data batch_size 6 = 6" in error


WARNING_LINE = re.compile(r"\.py:\d+: |warning|deprecat|Tip:", re.IGNORECASE)


@pytest.mark.slow
def test_the_start_of_fit_test_and_check_videos_prints_only_warnings_about_the_run(synthetic_root, tmp_path):
    """The installed console script as a user runs it (W&B offline, the default loader workers, SLURM's client on
    the PATH): no line of third-party chatter, and the project's own notes say something about the run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "WANDB_MODE": "offline", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VMP_LIGHTNING_ALL_WARNINGS", None)
    script = str(Path(sys.executable).parent / "vmp-lightning")
    data = [a for a in tiny_data_args(synthetic_root) if "num_workers" not in a]

    def printed(*args: str) -> list[str]:
        done = subprocess.run([script, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return (done.stdout + done.stderr).splitlines()

    fit = printed("fit", *data, "--trainer.max_epochs=1", "--run_id=quiet")
    last = tmp_path / "runs" / "vmp-lightning" / "quiet" / "checkpoints" / "last.ckpt"
    tested = printed("test", f"--ckpt_path={last}")
    checked = printed("check-videos", *data, f"--out={tmp_path / 'check.csv'}")
    for name, lines in (("fit", fit), ("test", tested), ("check-videos", checked)):
        assert [line for line in lines if WARNING_LINE.search(line)] == [], name
    assert any("test reads the run's settings" in line for line in tested)
    assert not any("GPU available" in line for line in checked)  # no Trainer to check videos
