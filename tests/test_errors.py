"""Bad input is one clear line naming the file or setting: checkpoints that are no checkpoint, for another number
of classes, settings a checkpoint replaces, out-of-range settings."""

from __future__ import annotations

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
