"""Every YAML under configs/ parses against the CLI, and every model/data config trains for a step."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.config_sources import command_arguments

CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
MODEL_CONFIGS = [path for path in CONFIGS if "trainer" not in path.parts and "data" not in path.parts]


def test_there_are_configs():
    assert len(CONFIGS) >= 4 and MODEL_CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses(path, synthetic_root):
    cli = build_cli([*tiny_data_args(synthetic_root), "--trainer.logger=false"], run=False)
    data_args = [] if "data" in path.parts else tiny_data_args(synthetic_root)  # real datasets: parsed, not built
    config = cli.parser.parse_args(command_arguments(["--config", str(path), *data_args]))
    assert config.model.class_path == "vmp_lightning.classifier.VideoClassifier"


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.name)
def test_config_trains_a_step(path, synthetic_root, tmp_path):
    args = [
        "fit",
        f"--config={path}",
        *tiny_data_args(synthetic_root),
        "--model.init_args.num_frames=8",  # the tiny videos hold 16 frames (SlowFast's config asks for 32)
        "--trainer.fast_dev_run=1",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    cli = build_cli(args)
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
