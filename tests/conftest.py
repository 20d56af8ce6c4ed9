"""Shared fixtures: a tiny synthetic dataset written once per session, W&B and hubs kept offline.
Helper functions are in helpers.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["VMP_LIGHTNING_CACHE"] = tempfile.mkdtemp(prefix="vmp-cache-")  # frame indexes: not the user's home

from helpers import TINY_SPEC, fit_args, ramp_video
from vmp_lightning.cli import build_cli
from vmp_lightning.data import SyntheticMotionSpec, generate
from vmp_lightning.data.video_writer import VideoWriter


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """Cache folder holding the tiny synthetic dataset (generated once for the whole test session)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(SyntheticMotionSpec(**TINY_SPEC), root)
    return str(root)


@pytest.fixture(scope="session")
def trained(synthetic_root, tmp_path_factory) -> dict[str, Path]:
    """A baseline and a VMP run (1 epoch each, tested) on the tiny set, shared by the test files: their
    ``last.ckpt`` (``base``, ``vmp``), test prediction dumps (``*_preds``) and a validation video."""
    out = tmp_path_factory.mktemp("trained")
    runs = {}
    for name, vmp in (("base", "false"), ("vmp", "true")):
        cli = build_cli(
            fit_args(
                synthetic_root, out / name, "--trainer.max_epochs=1", f"--model.vmp={vmp}", "--test_after_fit=true"
            )
        )
        run = Path(cli.trainer.default_root_dir)
        runs[name] = run / "checkpoints" / "last.ckpt"
        runs[f"{name}_preds"] = run / "test_predictions.csv"
    runs["video"] = next((Path(synthetic_root)).glob("*/val/*.mp4"))
    return runs


@pytest.fixture
def bad_videos(tmp_path) -> dict:
    """A good video and the ways a file can be bad: empty, truncated, too short, a header that claims more
    frames than the file holds, and a path with no file."""
    good = ramp_video(tmp_path / "good.mp4", frames=24)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    short = ramp_video(tmp_path / "short.mp4", frames=3)
    # moov first (faststart), then cut the media data: the header claims more frames than the file holds
    claims_more = tmp_path / "claims_more.mp4"
    frames = np.stack([np.full((32, 64, 3), 8 * t, np.uint8) + np.uint8(t % 3) for t in range(24)])
    with VideoWriter(claims_more, 64, 32, 10, crf=30, gop=4, container_options={"movflags": "faststart"}) as writer:
        for frame in frames:
            writer.write(frame)
    data = claims_more.read_bytes()
    claims_more.write_bytes(data[: int(len(data) * 0.9)])
    return {
        "good": good,
        "empty": empty,
        "truncated": truncated,
        "short": short,
        "claims_more": claims_more,
        "missing": tmp_path / "missing.mp4",
    }
