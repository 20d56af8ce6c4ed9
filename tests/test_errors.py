"""Bad input is one clear line naming the file or setting: checkpoints that are no checkpoint, for another number
of classes, settings a checkpoint replaces, out-of-range settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import QUIET, fit_args, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.commands import main


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory) -> Path:
    """``last.ckpt`` of a one-epoch VMP run on the tiny synthetic set (4 classes)."""
    folder = tmp_path_factory.mktemp("trained")
    fit = build_cli(fit_args(synthetic_root, folder, "--trainer.max_epochs=1", "--model.vmp=true"))
    return Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt"


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


def test_a_file_that_is_no_checkpoint_is_named(synthetic_root, trained, tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("these are not weights\n")
    assert "notes.ckpt: not a PyTorch checkpoint" in error_of(
        eval_args(synthetic_root, tmp_path, f"--ckpt_path={text}"), capsys
    )
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(trained.read_bytes()[:20000])
    err = error_of(eval_args(synthetic_root, tmp_path, f"--ckpt_path={cut}"), capsys)
    assert "cut.ckpt: a truncated or damaged checkpoint" in err
    err = error_of(eval_args(synthetic_root, tmp_path, f"--ckpt_path={tmp_path / 'nope.ckpt'}"), capsys)
    assert "nope.ckpt: no such checkpoint file" in err


def test_a_checkpoint_for_another_number_of_classes_says_so(synthetic_root, trained, tmp_path, capsys):
    err = error_of(
        eval_args(synthetic_root, tmp_path, f"--ckpt_path={trained}", "--data.init_args.num_classes=5"), capsys
    )
    assert "the checkpoint was trained for 4 classes, the data has 5" in err and "model.init_checkpoint" in err


def test_settings_a_checkpoint_replaces_are_said(synthetic_root, trained, tmp_path):
    with pytest.warns(
        UserWarning, match=r"replaces these model settings with the checkpoint's: .*model\.vmp: False -> True"
    ):
        tested = build_cli(eval_args(synthetic_root, tmp_path, f"--ckpt_path={trained}", "--model.vmp=false"))
    assert tested.model.model.prompt is not None


def test_a_negative_lambda_v_names_the_setting(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--model.lambda_v=-1", "--trainer.fast_dev_run=1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert 'Parser key "lambda_v"' in err and "v>=0" in err and "Traceback" not in err and len(err.splitlines()) < 20
