"""Bad input is one clear line naming the file or setting: checkpoints that are no checkpoint, for another number
of classes, settings a checkpoint replaces, out-of-range settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import QUIET, fit_args, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.commands import main


@pytest.fixture
def vmp_checkpoint(trained) -> Path:
    """``last.ckpt`` of the shared one-epoch VMP run (conftest's ``trained``, 4 classes)."""
    return trained["vmp"]


def error_of(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def eval_args(root: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "test",
        *tiny_data_args(root),
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
        *extra,
    ]


def test_a_file_that_is_no_checkpoint_is_named(synthetic_root, vmp_checkpoint, tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("these are not weights\n")
    assert "notes.ckpt: not a PyTorch checkpoint" in error_of(
        eval_args(synthetic_root, tmp_path, f"--ckpt_path={text}"), capsys
    )
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(vmp_checkpoint.read_bytes()[:20000])
    err = error_of(eval_args(synthetic_root, tmp_path, f"--ckpt_path={cut}"), capsys)
    assert "cut.ckpt: a truncated or damaged checkpoint" in err
    err = error_of(eval_args(synthetic_root, tmp_path, f"--ckpt_path={tmp_path / 'nope.ckpt'}"), capsys)
    assert "nope.ckpt: no such checkpoint file" in err


def test_a_checkpoint_for_another_number_of_classes_says_so(synthetic_root, vmp_checkpoint, tmp_path, capsys):
    err = error_of(
        eval_args(synthetic_root, tmp_path, f"--ckpt_path={vmp_checkpoint}", "--data.init_args.num_classes=5"), capsys
    )
    assert "the checkpoint was trained for 4 classes, the data has 5" in err and "model.init_checkpoint" in err


def test_settings_a_checkpoint_replaces_are_said(synthetic_root, vmp_checkpoint, tmp_path):
    with pytest.warns(
        UserWarning, match=r"replaces these model settings with the checkpoint's: .*model\.vmp: False -> True"
    ):
        tested = build_cli(eval_args(synthetic_root, tmp_path, f"--ckpt_path={vmp_checkpoint}", "--model.vmp=false"))
    assert tested.model.model.prompt is not None


def test_a_negative_lambda_v_names_the_setting(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--model.lambda_v=-1", "--trainer.fast_dev_run=1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert 'Parser key "lambda_v"' in err and "v>=0" in err and "Traceback" not in err and len(err.splitlines()) < 20


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('--model.init_args.normalization={"mean": [0.45, 0.45, 0.45], "std": [0.2, 0, 0.2]}', "std must be positive"),
        ('--model.init_args.normalization={"mean": [0.45, 0.45], "std": [0.2, 0.2, 0.2]}', "mean needs one value per"),
        ("--data.init_args.stride=0", "data.frames_per_clip and data.stride must be >= 1"),
        ("--model.init_args.vmp_sites=[slow]", "vmp_sites must be a non-empty subset of ['input']"),
        ("--data.init_args.num_classes=0", "data.num_classes must be in [2, 8], got 0"),
        ("--data.init_args.batch_size=0", "need data.batch_size >= 1"),
        ("--data.init_args.crop_size=300", "need 0 < data.crop_size <= data.short_side[0]"),
    ],
)
def test_bad_values_are_one_line_at_start(synthetic_root, tmp_path, capsys, setting, message):
    """Before any video is read: one line naming the setting, exit 2 (no ZeroDivisionError at the first batch)."""
    err = error_of([*fit_args(synthetic_root, tmp_path, "--model.vmp=true", setting)], capsys)
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.ckpt"))


def test_a_fit_with_no_training_video_is_an_error_not_zero_steps(tmp_path, capsys):
    """All listed videos missing, skipped by the policy: the fit stops with the reason and a non-zero exit."""
    (tmp_path / "train.txt").write_text("gone0.mp4 0\ngone1.mp4 1\n")
    (tmp_path / "val.txt").write_text("gone2.mp4 0\n")
    data = [f"--data.train_list={tmp_path / 'train.txt'}", f"--data.val_list={tmp_path / 'val.txt'}"]
    args = ["fit", "--data=vmp_lightning.data.VideoListDataModule", *data, f"--data.root={tmp_path}"]
    args += ["--data.on_bad_video=skip", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", *QUIET]
    with pytest.warns(UserWarning, match="3 videos listed in the annotation are missing"):
        err = error_of(args, capsys)
    assert "the training split holds no video" in err and not list(tmp_path.rglob("metrics.json"))


class _Evil:
    """A pickle that would run a shell command on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_that_would_run_code_are_refused_in_one_line_naming_what(synthetic_root, tmp_path, capsys):
    import pickle

    import torch

    marker = tmp_path / "pwned"
    evil_pkl, evil_ckpt = tmp_path / "evil.pkl", tmp_path / "evil.ckpt"
    evil_pkl.write_bytes(pickle.dumps({"blobs": _Evil(marker)}, protocol=2))
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Evil(marker)}}, evil_ckpt)
    fit = ["fit", *tiny_data_args(synthetic_root), "--trainer.logger=false", "--trainer.fast_dev_run=1"]
    err = error_of([*fit, f"--model.init_args.init_checkpoint={evil_pkl}"], capsys)
    assert err.count("\n") == 1 and f"{evil_pkl}: refused: posix.system is not allowed in a weights file" in err
    err = error_of(
        ["test", *tiny_data_args(synthetic_root), "--trainer.logger=false", f"--ckpt_path={evil_ckpt}"], capsys
    )
    assert err.count("\n") == 1 and f"{evil_ckpt}: refused: loading it would call posix.system" in err
    assert not marker.exists()


def test_a_python_tag_in_a_config_or_manifest_is_one_line_naming_the_file(synthetic_root, tmp_path, capsys):
    from vmp_lightning.errors import UserError
    from vmp_lightning.harness.manifest import load_manifest

    config = tmp_path / "evil.yaml"
    config.write_text("model:\n  init_args:\n    lambda_v: !!python/object/apply:os.system [touch pwned]\n")
    err = error_of(["fit", f"--config={config}", *tiny_data_args(synthetic_root)], capsys)
    assert err.count("\n") == 1 and f"{config} line 3:" in err and "python/object/apply" in err
    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: !!python/name:os.system\ndatasets: {}\nmodels: {}\ncolumns: []\n")
    with pytest.raises(UserError, match=rf"^{manifest} line 1: .*python/name"):
        load_manifest(manifest)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["../../../ESCAPED", "/tmp/abs", "a/b"])
def test_names_that_would_leave_their_folder_are_refused(tmp_path, name, capsys):
    from vmp_lightning.errors import UserError
    from vmp_lightning.harness.manifest import load_manifest
    from vmp_lightning.harness.sweep import run_sweep

    for where in ("name", "model", "dataset"):
        spec = {"name": "m", "datasets": {"d": {}}, "models": {"a": {}}, "columns": []}
        if where == "name":
            spec["name"] = name
        else:
            spec[f"{where}s"] = {name: {}}
        manifest = tmp_path / f"{where}.yaml"
        manifest.write_text(json.dumps(spec))
        with pytest.raises(UserError, match=r"a name becomes a folder; use no '/', '\.\.' or absolute path"):
            load_manifest(manifest)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(json.dumps({"name": name, "method": "grid", "parameters": {"x": {"values": [1]}}, "command": []}))
    with pytest.raises(UserError, match="a name becomes a folder"):
        run_sweep(sweep, tmp_path / "out")
    err = error_of(["fit", f"--run_id={name}", "--trainer.fast_dev_run=1"], capsys)
    assert err.count("\n") == 1 and "--run_id" in err
    assert not (tmp_path.parent / "ESCAPED").exists()


def test_a_list_file_that_is_not_utf8_is_one_line_naming_the_file_and_line(tmp_path):
    from vmp_lightning.data import DatasetLayoutError, read_video_lists

    listing = tmp_path / "train.txt"
    listing.write_bytes(b"a.mp4 jump\nb.mp4 " + "caf\u00e9".encode("latin-1") + b"\n")
    with pytest.raises(DatasetLayoutError, match=rf"^{listing} line 2: not UTF-8 text"):
        read_video_lists({"train": listing}, tmp_path)


def test_a_folder_a_fifo_or_a_symlink_loop_named_like_a_video_is_reported_as_what_it_is(tmp_path):
    import os

    from vmp_lightning.data import DatasetLayoutError, VideoListDataModule

    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "fifo.mp4")
    os.symlink(tmp_path / "loop.mp4", tmp_path / "loop.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (tmp_path / "list.txt").write_text("folder.mp4 a\nfifo.mp4 a\nloop.mp4 b\ngone.mp4 b\nabsent.mp4 b\n")
    module = VideoListDataModule(train_list=str(tmp_path / "list.txt"), val_list=str(tmp_path / "list.txt"),
                                 root=str(tmp_path))  # fmt: skip
    with pytest.raises(DatasetLayoutError) as error:
        module.annotations  # noqa: B018
    message = str(error.value)
    for line in ("folder.mp4: a folder", "fifo.mp4: not a regular file", "loop.mp4: a symlink loop",
                 "gone.mp4: a broken symlink", "absent.mp4: not on disk"):  # fmt: skip
        assert line in message, line


@pytest.mark.slow
def test_a_sweep_whose_trials_all_fail_exits_non_zero(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    command = ["${env}", "vmp-lightning", "fit", "--data=vmp_lightning.data.HMDB51DataModule",
               f"--data.init_args.root={tmp_path / 'none'}", "${args}"]  # fmt: skip
    spec = {"name": "s", "method": "grid", "metric": {"name": "val/acc1", "goal": "maximize"}, "command": command}
    sweep.write_text(json.dumps({**spec, "parameters": {"model.init_args.lambda_v": {"values": [0.0]}}}))
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(sweep), f"--out={tmp_path / 'out'}"])
    assert stop.value.code == 1 and "1 of 1 trials failed" in capsys.readouterr().err
