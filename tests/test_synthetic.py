"""Synthetic motion videos: deterministic by seed, decodable to the frames written, classes that differ only by
motion."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import TINY_SPEC
from vmp_lightning.data import (
    SyntheticMotionSpec,
    generate,
    open_video,
    read_frames,
    render_video,
    write_video,
)


def test_rendering_is_deterministic_by_seed():
    spec = SyntheticMotionSpec(**TINY_SPEC)
    first = render_video(spec, 1, np.random.default_rng([0, 1]))
    again = render_video(spec, 1, np.random.default_rng([0, 1]))
    other = render_video(spec, 1, np.random.default_rng([1, 1]))
    assert first.shape == (16, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int)).mean() > 10


def decode_all(path) -> np.ndarray:
    reader = open_video(path)
    return read_frames(reader, np.arange(len(reader)))


def test_generated_files_are_identical_for_the_same_seed(tmp_path):
    spec = SyntheticMotionSpec(**{**TINY_SPEC, "videos_per_class": (1, 1, 1)})
    one, two = generate(spec, tmp_path / "a"), generate(spec, tmp_path / "b")
    files = sorted(p.relative_to(one) for p in one.rglob("*.mp4"))
    assert len(files) == 3 * spec.num_classes
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes()
    changed = SyntheticMotionSpec(**{**TINY_SPEC, "videos_per_class": (1, 1, 1), "seed": 7})
    assert changed.fingerprint() != spec.fingerprint()
    other = decode_all(generate(changed, tmp_path / "a") / files[0])
    assert np.abs(other.astype(int) - decode_all(one / files[0])).mean() > 10


def test_files_decode_with_decord_to_the_frames_written(tmp_path):
    spec = SyntheticMotionSpec(**TINY_SPEC)
    frames = render_video(spec, 0, np.random.default_rng(3))
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=12)
    reader = open_video(path)
    assert len(reader) == len(frames)
    decoded = read_frames(reader, np.arange(len(frames)))
    assert decoded.shape == frames.shape
    # H.264 4:2:0 keeps luma (what the prompt layer reads) close; chroma of a fine texture is blurred.
    luma = lambda v: (v.astype(np.float32) * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1)  # noqa: E731
    assert np.abs(luma(decoded) - luma(frames)).mean() < 3.0
    # every decoded frame is closest to the frame written at the same index (no shift, no duplicates)
    distance = np.abs(decoded[:, None].astype(np.float32) - frames[None].astype(np.float32)).mean(axis=(2, 3, 4))
    np.testing.assert_array_equal(distance.argmin(axis=1), np.arange(len(frames)))


def test_colours_survive_encoding(tmp_path):
    frames = np.zeros((3, 32, 64, 3), np.uint8)
    frames[:, :, :32] = (200, 50, 120)
    frames[:, :, 32:] = (10, 220, 90)
    write_video(tmp_path / "flat.mp4", frames, fps=10)
    decoded = decode_all(tmp_path / "flat.mp4")
    assert np.abs(decoded[:, 4:-4, 4:28].astype(int) - frames[:, 4:-4, 4:28]).max() <= 3
    assert np.abs(decoded[:, 4:-4, 36:60].astype(int) - frames[:, 4:-4, 36:60]).max() <= 3


def test_classes_differ_by_motion_not_by_appearance():
    """Per-class average colour statistics of single frames are alike; frame-difference direction is not."""
    spec = SyntheticMotionSpec(**{**TINY_SPEC, "noise_std": 0.0})
    right = [render_video(spec, 0, np.random.default_rng([9, i])).astype(np.float32) for i in range(12)]
    left = [render_video(spec, 1, np.random.default_rng([9, 100 + i])).astype(np.float32) for i in range(12)]
    mean_r = np.mean([v[0].mean() for v in right])
    mean_l = np.mean([v[0].mean() for v in left])
    assert abs(mean_r - mean_l) < 8  # single frames: same distribution

    def shift_score(video):  # does frame t+1 match frame t shifted right (+) or left (-)?
        plus = np.abs(np.roll(video[:-1], 2, axis=2) - video[1:]).mean()
        minus = np.abs(np.roll(video[:-1], -2, axis=2) - video[1:]).mean()
        return minus - plus

    assert all(shift_score(v) > 0 for v in right) and all(shift_score(v) < 0 for v in left)


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticMotionSpec(num_classes=20)
    with pytest.raises(ValueError, match="even"):
        SyntheticMotionSpec(video_size=33)
    with pytest.raises(ValueError, match="even frame sizes"):
        write_video("/tmp/never.mp4", np.zeros((2, 5, 6, 3), np.uint8), 10)


def test_encoding_the_same_frames_twice_gives_the_same_bytes(tmp_path):
    """x264's assembly made some encodes of the same frames differ (3-5 variants in 8 tries for this video)."""
    spec = SyntheticMotionSpec(videos_per_class=(8, 2, 2))
    label = spec.class_names.index("left")
    frames = render_video(spec, label, np.random.default_rng([spec.seed, 2, label, 1]))
    for attempt in range(6):
        write_video(tmp_path / f"{attempt}.mp4", frames, spec.fps)
    assert len({(tmp_path / f"{attempt}.mp4").read_bytes() for attempt in range(6)}) == 1


def test_runs_started_together_on_an_empty_cache_share_it(tmp_path):
    """Two processes generating the same dataset at once: no shared temporary file, one writes, both succeed."""
    spec = SyntheticMotionSpec(**TINY_SPEC)
    code = (
        "import sys; from vmp_lightning.data import SyntheticMotionSpec, generate; "
        f"print(generate(SyntheticMotionSpec(**{TINY_SPEC!r}), sys.argv[1]))"
    )
    children = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE) for _ in range(3)]
    errors = [child.communicate()[1].decode() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    folder = tmp_path / spec.fingerprint()
    assert (folder / "manifest.csv").is_file() and not list(folder.glob("**/*.partial*"))
    videos = sorted(folder.glob("*/*.mp4"))
    assert len(videos) == spec.num_classes * sum(spec.videos_per_class)
    reference = tmp_path / "alone"
    generate(spec, reference)
    for video in videos:  # byte-identical to a generation alone
        assert video.read_bytes() == (reference / spec.fingerprint() / video.relative_to(folder)).read_bytes()
