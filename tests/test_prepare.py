"""Clip cutting shared by the preparation steps (data/prepare.py)."""

from __future__ import annotations

from helpers import ramp_video
from vmp_lightning.data import (
    open_video,
    read_frames,
)
from vmp_lightning.data.prepare import cut_clip


def test_cut_clip_resizes_and_keyframes(tmp_path):
    source = ramp_video(tmp_path / "src.mp4", frames=20)
    frames = cut_clip(source, tmp_path / "out.mp4", 4, 13, short_side=64, gop=2)
    reader = open_video(tmp_path / "out.mp4")
    assert frames == 10 and len(reader) == 10 and read_frames(reader, [0]).shape == (1, 64, 128, 3)
