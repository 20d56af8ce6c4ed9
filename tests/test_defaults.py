"""A user's own road: the classes a config names start from their own defaults (not the demo's), a resumed run is
the run it says (schedule, best checkpoint), and a run's checkpoint brings its run's data to test / predict."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from helpers import QUIET, TINY_SPEC, UserNet, fit_args, ramp_video, tiny_data_args
from vmp_lightning.classifier import VideoClassifier
from vmp_lightning.cli import build_cli
from vmp_lightning.commands import main
from vmp_lightning.config_sources import DEMO_CONFIG
from vmp_lightning.data import SyntheticMotionDataModule, VideoListDataModule
from vmp_lightning.errors import ConfigError

DEMO = yaml.safe_load(Path(DEMO_CONFIG).read_text())


def printed_config(capsys, *args: str) -> dict:
    """What ``vmp-lightning fit ... --print_config`` prints, read back."""
    with pytest.raises(SystemExit) as stop:
        main(["fit", *args, "--print_config"])
    assert stop.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def defaults(cls: type, *names: str) -> dict:
    """The defaults of ``names`` in the signatures of ``cls`` (a subclass passing ``**kwargs`` on: its bases')."""
    found = {}
    for klass in cls.__mro__:
        for name, parameter in inspect.signature(vars(klass).get("__init__", object.__init__)).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                found.setdefault(name, parameter.default)
    return {name: list(found[name]) if isinstance(found[name], tuple) else found[name] for name in names}


def write_lists(folder: Path) -> dict[str, Path]:
    """Two classes of short real MP4s and the train / val lists of `VideoListDataModule`."""
    for i in range(4):
        ramp_video(folder / "videos" / f"v{i}.mp4", frames=20)
    (folder / "train.txt").write_text("v0.mp4 jump\nv1.mp4 run\n")
    (folder / "val.txt").write_text("v2.mp4 jump\nv3.mp4 run\n")
    return {"train": folder / "train.txt", "val": folder / "val.txt", "root": folder / "videos"}


def minimal_config(folder: Path) -> Path:
    lists = write_lists(folder)
    config = {
        "data": {
            "class_path": "vmp_lightning.data.VideoListDataModule",
            "init_args": {"train_list": str(lists["train"]), "val_list": str(lists["val"]), "root": str(lists["root"])},
        }
    }
    path = folder / "minimal.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


CLIP_SETTINGS = ("stride", "crop_size", "short_side", "flip", "batch_size", "num_workers")


def test_a_users_data_class_starts_from_its_own_defaults(tmp_path, capsys):
    config = printed_config(capsys, "--config", str(minimal_config(tmp_path)))
    data = config["data"]["init_args"]
    assert {k: data[k] for k in CLIP_SETTINGS} == defaults(VideoListDataModule, *CLIP_SETTINGS)
    # the sections the user left alone are the demo's
    backbone, demo_backbone = config["model"]["init_args"]["backbone"], DEMO["model"]["init_args"]["backbone"]
    assert backbone["class_path"] == demo_backbone["class_path"]
    assert backbone["init_args"]["width"] == demo_backbone["init_args"]["width"]
    demo_optimizer = DEMO["model"]["init_args"]["optimizer"]["init_args"]
    assert config["model"]["init_args"]["optimizer"]["init_args"]["lr"] == demo_optimizer["lr"]
    # named by a flag instead of a config: the same
    flagged = printed_config(capsys, "--data=vmp_lightning.data.VideoListDataModule", "--data.init_args.root=x")
    assert {k: flagged["data"]["init_args"][k] for k in CLIP_SETTINGS} == defaults(VideoListDataModule, *CLIP_SETTINGS)


@pytest.mark.parametrize("how", ["config", "flag", "nested flag"])
def test_a_users_backbone_starts_from_its_own_defaults(tmp_path, capsys, how):
    if how == "config":
        path = tmp_path / "backbone.yaml"
        path.write_text(yaml.safe_dump({"model": {"init_args": {"backbone": {"class_path": "helpers.UserNet"}}}}))
        args = ["--config", str(path)]
    else:
        args = [
            "--model.backbone=helpers.UserNet"
            if how == "flag"
            else "--model.init_args.backbone.class_path=helpers.UserNet"
        ]
    config = printed_config(capsys, *args)
    backbone = config["model"]["init_args"]["backbone"]
    assert backbone["class_path"] == "helpers.UserNet"
    assert backbone["init_args"] == defaults(UserNet, "width", "dropout") == {"width": 12, "dropout": 0.5}
    assert config["data"]["init_args"]["batch_size"] == DEMO["data"]["init_args"]["batch_size"]  # the demo's data


def test_a_users_optimizer_and_model_start_from_their_own_defaults(capsys):
    config = printed_config(capsys, "--model.optimizer=torch.optim.SGD", "--model.optimizer.lr=0.1")
    sgd = config["model"]["init_args"]["optimizer"]["init_args"]
    assert sgd["weight_decay"] == inspect.signature(torch.optim.SGD).parameters["weight_decay"].default
    assert sgd["weight_decay"] != DEMO["model"]["init_args"]["optimizer"]["init_args"]["weight_decay"]
    demo_class = printed_config(capsys, "--model.optimizer.lr=0.1")  # the demo's class, the demo's other settings
    demo_decay = DEMO["model"]["init_args"]["optimizer"]["init_args"]["weight_decay"]
    assert demo_class["model"]["init_args"]["optimizer"]["init_args"]["weight_decay"] == demo_decay
    named_model = printed_config(capsys, "--model=vmp_lightning.classifier.VideoClassifier")
    assert named_model["model"]["init_args"]["num_frames"] == defaults(VideoClassifier, "num_frames")["num_frames"]
    assert (
        named_model["model"]["init_args"]["backbone"]["class_path"]
        == DEMO["model"]["init_args"]["backbone"]["class_path"]
    )


def test_a_fit_of_a_minimal_list_config_trains_at_the_class_crop_size(tmp_path):
    args = ["fit", "--config", str(minimal_config(tmp_path)), "--trainer.fast_dev_run=1", "--trainer.logger=false"]
    cli = build_cli([*args, *QUIET, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    crop = defaults(VideoListDataModule, "crop_size")["crop_size"]
    batch = next(iter(cli.datamodule.train_dataloader()))
    assert batch["video"].shape[-2:] == (crop, crop) and cli.datamodule.flip is True


def run_folder(cli) -> Path:
    return Path(cli.trainer.default_root_dir)


def wandb_fit(synthetic_root: str, *extra: str):
    """A fit on the tiny data as a user runs it: the default (offline W&B) logger, the run in ./runs."""
    return build_cli(["fit", *tiny_data_args(synthetic_root), *QUIET, *extra])


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_a_run_resumed_with_more_epochs_continues_its_cosine_and_keeps_its_best(synthetic_root, offline, recwarn):
    first = wandb_fit(synthetic_root, "--trainer.max_epochs=1", "--run_id=r1")
    run = run_folder(first)
    after_one = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    last = run / "checkpoints" / "last.ckpt"
    resumed = build_cli(
        ["fit", f"--config={run / 'config.yaml'}", f"--ckpt_path={last}", "--trainer.max_epochs=2", *QUIET]
    )
    assert resumed.trainer.current_epoch == 2
    after_two = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert after_two["lr_schedulers"][0]["T_max"] == 2
    assert changed(after_one["state_dict"], after_two["state_dict"])  # lr 0 would leave every weight as it was
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["init_args"]["lr_scheduler"]["init_args"]["T_max"] == 2  # the schedule it ran
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1  # save_top_k 1: one best, not one per resume
    best = resumed.trainer.checkpoint_callback
    assert best.best_model_score is not None and Path(best.best_model_path).is_file()


def test_a_checkpoint_that_spells_its_folder_otherwise_keeps_its_best(synthetic_root, offline, recwarn):
    """0.4 saved a relative folder for a fresh run and an absolute one on resume: the same folder either way."""
    first = wandb_fit(synthetic_root, "--trainer.max_epochs=1", "--run_id=r2")
    last = run_folder(first) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    for state in checkpoint["callbacks"].values():
        if "dirpath" in state:
            state["dirpath"] = str(Path(state["dirpath"]).relative_to(offline))
    torch.save(checkpoint, last)
    resumed = wandb_fit(synthetic_root, "--trainer.max_epochs=2", f"--ckpt_path={last}")
    assert resumed.trainer.current_epoch == 2
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    assert len(list(last.parent.glob("epoch*.ckpt"))) == 1


def test_a_runs_checkpoint_is_tested_on_the_runs_data(synthetic_root, tmp_path, caplog):
    fit = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1"))
    last = run_folder(fit) / "checkpoints" / "last.ckpt"
    tested = build_cli(["test", f"--ckpt_path={last}", "--trainer.logger=false", *QUIET])  # no data settings at all
    test_videos = TINY_SPEC["num_classes"] * TINY_SPEC["videos_per_class"][2]
    assert tested.trainer.callback_metrics["test/videos"] == test_videos
    assert str(tested.datamodule.root) == synthetic_root
    assert f"test reads the run's settings from {run_folder(fit) / 'config.yaml'}" in caplog.text
    caplog.clear()
    given = tmp_path / "other.yaml"
    given.write_text(yaml.safe_dump({"data": {"init_args": {"root": synthetic_root}}}))
    build_cli(["validate", f"--config={given}", *tiny_data_args(synthetic_root), f"--ckpt_path={last}", *QUIET])
    assert "reads the run's settings" not in caplog.text  # --config given: the user's settings


def test_data_for_another_clip_contract_is_refused_naming_both(synthetic_root, tmp_path):
    fit = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1", "--model.vmp=true"))
    model = fit.model
    data = SyntheticMotionDataModule(
        **TINY_SPEC, root=synthetic_root, frames_per_clip=8, crop_size=32, short_side=(32, 36), num_workers=0
    )
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(
        ConfigError,
        match=r"takes clips of 9 frames \(num_frames 8 \+ 1 for the motion prompt\), "
        r"the data module samples 8",
    ):
        trainer.test(model, datamodule=data)


def test_two_fits_in_one_process_log_two_wandb_runs(synthetic_root, offline):
    """A notebook or a job running several commands: each command's W&B run ends with it."""
    for run_id in ("one", "two"):
        wandb_fit(synthetic_root, "--trainer.max_epochs=1", f"--run_id={run_id}")
    for run_id in ("one", "two"):
        (folder,) = (offline / "runs" / "wandb").glob(f"offline-run-*-{run_id}")
        assert (folder / f"run-{run_id}.wandb").is_file()
        record = json.loads((offline / "runs" / "vmp-lightning" / run_id / "metrics.json").read_text())
        assert record["run_id"] == run_id
