"""Every run a complete record: the whole config in W&B and beside the checkpoints, test metrics in the fit's W&B
run, metrics.json, predictions from `predict`, linked settings (cosine T_max, TimeSformer frames), effective batch."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from helpers import QUIET, REPO, tiny_data_args
from vmp_lightning.cli import build_cli


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    return tmp_path / "runs"


def wandb_run_files(save_dir: Path, run_id: str) -> list[Path]:
    return sorted(save_dir.glob(f"wandb/offline-run-*-{run_id}"))


def test_a_fit_records_everything_and_tests_its_best_checkpoint_in_the_same_run(
    synthetic_root, offline_wandb, monkeypatch
):
    monkeypatch.setattr("vmp_lightning.cli.finish_wandb_runs", lambda trainer: None)  # its summary read here
    args = [
        "fit",
        *tiny_data_args(synthetic_root),
        f"--trainer.logger.init_args.save_dir={offline_wandb}",
        "--trainer.logger.init_args.name=table2/tiny+vmp/synthetic",
        "--trainer.logger.init_args.group=table2/tiny+vmp",
        "--trainer.logger.init_args.tags=[tiny, synthetic, vmp]",
        "--trainer.logger.init_args.notes=a note",
        "--model.vmp=true",
        "--trainer.max_epochs=2",
        "--trainer.limit_val_batches=1",
        "--test_after_fit=true",
        *QUIET,
    ]
    cli = build_cli(args)
    experiment = cli.trainer.logger.experiment
    whole = experiment.config["config"]
    assert whole["data"]["init_args"]["batch_size"] == 4 and whole["trainer"]["max_epochs"] == 2
    assert whole["seed_everything"] == 0 and whole["model"]["init_args"]["vmp"] is True
    assert experiment.config["effective_batch_size"] == 4
    assert experiment.name == "table2/tiny+vmp/synthetic" and experiment.group == "table2/tiny+vmp"
    assert list(experiment.tags) == ["tiny", "synthetic", "vmp"] and experiment.notes == "a note"
    assert "test/acc1" in experiment.summary.keys()  # noqa: SIM118 (a W&B summary has no __contains__)
    run_id = cli.trainer.logger.version
    experiment.finish()
    run = Path(cli.trainer.default_root_dir)
    record = json.loads((run / "metrics.json").read_text())
    best = cli.trainer.checkpoint_callback.best_model_path
    assert record["best_checkpoint"] == best and record["run_id"] == run_id and record["epochs"] == 2
    assert record["test"]["test/acc1"] == pytest.approx(float(cli.trainer.callback_metrics["test/acc1"]))
    assert set(record["val"]) >= {"val/acc1", "val/acc5"} and (run / "test_predictions.csv").is_file()
    (files,) = [f / "files" / run_id for f in wandb_run_files(offline_wandb, run_id)]
    assert (files / "config.yaml").read_text() == (run / "config.yaml").read_text()
    assert not (files / "config.yaml").is_symlink() and not (files / "metrics.json").is_symlink()  # synced anywhere
    assert json.loads((files / "metrics.json").read_text()) == record


def test_testing_a_runs_checkpoint_continues_its_wandb_run(synthetic_root, offline_wandb, tmp_path):
    fit = [*tiny_data_args(synthetic_root), f"--trainer.logger.init_args.save_dir={offline_wandb}", *QUIET]
    first = build_cli(["fit", *fit, "--trainer.max_epochs=1", "--trainer.limit_val_batches=1"])
    run_id, run = first.trainer.logger.version, Path(first.trainer.default_root_dir)
    first.trainer.logger.experiment.finish()
    elsewhere = tmp_path / "elsewhere"  # another machine's defaults: the checkpoint says where its run is
    last = run / "checkpoints" / "last.ckpt"
    save_dir = f"--trainer.logger.init_args.save_dir={elsewhere}"
    tested = build_cli(["test", *tiny_data_args(synthetic_root), save_dir, *QUIET, f"--ckpt_path={last}"])
    assert tested.trainer.logger.version == run_id and tested.trainer.logger.experiment.id == run_id
    tested.trainer.logger.experiment.finish()
    assert (run / "test_predictions.csv").is_file() and not elsewhere.exists()
    assert len(wandb_run_files(offline_wandb, run_id)) == 2  # the fit's and the test's part of one W&B run


def test_wandb_disabled_writes_nothing(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    args = ["fit", *tiny_data_args(synthetic_root), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}"]
    cli = build_cli([*args, "--trainer.max_steps=1", "--trainer.limit_val_batches=1", *QUIET])
    cli.trainer.logger.experiment.finish()
    assert not list(tmp_path.glob("**/wandb")) and (Path(cli.trainer.default_root_dir) / "config.yaml").is_file()


def test_predict_writes_the_logits_of_every_clip(synthetic_root, tmp_path):
    common = [*tiny_data_args(synthetic_root), "--trainer.logger=false", *QUIET]
    fit = build_cli(["fit", *common, f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1"])
    last = Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    out = tmp_path / "predict"
    predicted = build_cli(["predict", *common, f"--ckpt_path={last}", f"--trainer.default_root_dir={out}"])
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    dataset = predicted.datamodule.predict_dataloader().dataset
    assert len(rows) == len(dataset) and list(rows[0])[:3] == ["video_id", "view", "label"]
    assert len(rows[0]) == 3 + 4  # 4 classes
    import torch

    saved = torch.load(out / "predictions.pt", weights_only=True)
    assert saved["logits"].shape == (len(dataset), 4) and saved["video_id"][0] == rows[0]["video_id"]
    assert float(rows[0]["logit_2"]) == pytest.approx(saved["logits"][0, 2].item(), rel=1e-5)


def test_the_cosine_schedule_follows_max_epochs(synthetic_root, tmp_path):
    args = ["fit", *tiny_data_args(synthetic_root), "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    limits = ["--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"]
    cli = build_cli([*args, "--trainer.max_epochs=3", *limits])
    (config,) = cli.trainer.lr_scheduler_configs
    assert config.scheduler.T_max == 3  # the default config says 20
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)  # the cosine ended with the run
    saved = yaml.safe_load((Path(cli.trainer.default_root_dir) / "config.yaml").read_text())
    assert saved["model"]["init_args"]["lr_scheduler"]["init_args"]["T_max"] == 3  # the record says what was used


def test_timesformer_is_built_for_the_models_frames(synthetic_root):
    """model.num_frames is T for the time embedding and for the data: one setting, so a sweep over frames cannot
    leave them apart."""
    args = [
        f"--config={REPO / 'configs' / 'backbone' / 'timesformer_base.yaml'}",
        *tiny_data_args(synthetic_root),
        "--model.init_args.num_frames=4",
        "--model.init_args.backbone.init_args.img_size=32",
        "--model.init_args.backbone.init_args.embed_dim=32",
        "--model.init_args.backbone.init_args.depth=1",
        "--model.init_args.backbone.init_args.num_heads=2",
        "--model.vmp=true",
        "--trainer.logger=false",
    ]
    cli = build_cli(args, run=False)
    backbone = cli.model.model.backbone
    assert backbone.num_frames == 4 and backbone.time_embed.shape[1] == 4  # not the config's 8
    assert cli.datamodule.frames_per_clip == 5
    saved = yaml.safe_load(cli.parser.dump(cli.config))
    assert saved["model"]["init_args"]["num_frames"] == 4


def test_prompt_media_logs_the_maps_and_the_pn_curve_to_wandb(synthetic_root, offline_wandb):
    args = [
        "fit",
        *tiny_data_args(synthetic_root),
        f"--trainer.logger.init_args.save_dir={offline_wandb}",
        "--model.vmp=true",
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=1",
        "--trainer.limit_val_batches=0",  # the paper's protocol: no validation, the media show a test clip
        *QUIET,
    ]
    cli = build_cli(args)
    run_id = cli.trainer.logger.version
    cli.trainer.logger.experiment.finish()
    (folder,) = wandb_run_files(offline_wandb, run_id)
    maps = sorted((folder / "files" / "media" / "images" / "prompt").glob("maps_*.png"))
    curves = sorted((folder / "files" / "media" / "images" / "prompt").glob("pn_curve_*.png"))
    assert len(maps) == 1 and len(curves) == 1  # on by default: every 5 epochs and at the last
    from PIL import Image

    image = Image.open(maps[0])
    assert image.width > 8 * 100 and len(set(image.convert("L").getdata())) > 10  # 8 steps wide, not blank
