"""Synthetic motion videos, decoding, clip sampling and the data module's frame count."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import TINY_SPEC

from vmp_lightning.data import (
    SyntheticMotionDataModule,
    SyntheticMotionSpec,
    VideoDecodeError,
    VideoRecord,
    eval_transform,
    generate,
    open_video,
    read_frames,
    render_video,
    sample_clip_indices,
    train_transform,
    write_video,
)
from vmp_lightning.data.dataset import ClipDataset


def tiny_module(root: str, **overrides) -> SyntheticMotionDataModule:
    spec = TINY_SPEC
    kwargs = dict(
        root=root,
        num_classes=spec["num_classes"],
        videos_per_class=spec["videos_per_class"],
        video_size=spec["size"],
        video_frames=spec["frames"],
        object_size=spec["object_size"],
        num_distractors=spec["num_distractors"],
        crop_size=32,
        short_side=(32, 36),
        batch_size=4,
        num_workers=0,
    )
    return SyntheticMotionDataModule(**{**kwargs, **overrides})


# --- synthetic videos ----------------------------------------------------------------------------------------
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
        SyntheticMotionSpec(size=33)
    with pytest.raises(ValueError, match="even frame sizes"):
        write_video("/tmp/never.mp4", np.zeros((2, 5, 6, 3), np.uint8), 10)


# --- sampling ------------------------------------------------------------------------------------------------
def test_clip_indices_window_centre_and_random():
    centred = sample_clip_indices(100, 9, 4)
    np.testing.assert_array_equal(centred, 34 + 4 * np.arange(9))  # slack 67, centred start 33.5 rounds to 34
    rng = np.random.default_rng(0)
    starts = {int(sample_clip_indices(100, 9, 4, rng)[0]) for _ in range(200)}
    assert min(starts) == 0 and max(starts) == 100 - 33 and len(starts) > 30
    np.testing.assert_array_equal(sample_clip_indices(40, 3, 2, start_frame=10), np.array([28, 30, 32]))


def test_short_videos_spread_frames_without_consecutive_duplicates():
    indices = sample_clip_indices(12, 9, 4)
    assert indices[0] == 0 and indices[-1] == 11 and len(indices) == 9
    assert np.all(np.diff(indices) > 0)
    with pytest.raises(ValueError, match="0 frames"):
        sample_clip_indices(0, 8, 2)


def test_vmp_switch_samples_one_more_frame(synthetic_root):
    base, vmp = tiny_module(synthetic_root), tiny_module(synthetic_root, extra_frames=1)
    for module in (base, vmp):
        module.setup("fit")
    assert base.frames_per_clip == 8 and vmp.frames_per_clip == 9
    batch = next(iter(vmp.train_dataloader()))
    assert batch["video"].shape == (4, 3, 9, 32, 32) and batch["video"].dtype == torch.uint8
    normalised = vmp.on_after_batch_transfer(batch, 0)["video"]
    assert normalised.dtype == torch.float32 and normalised.shape == (4, 3, 9, 32, 32)
    assert next(iter(base.val_dataloader()))["video"].shape[2] == 8
    assert {len(base.records[s]) for s in ("train", "val", "test")} == {24, 8, 12}
    assert base.num_classes == 4 and base.class_names[:2] == ["right", "left"]


def test_eval_clips_are_deterministic_and_normalised(synthetic_root):
    module = tiny_module(synthetic_root, extra_frames=1)
    module.setup("test")
    dataset = module.dataset("test")
    first, again = dataset[0], dataset[0]
    torch.testing.assert_close(first["video"], again["video"])
    video = module.normalize(first["video"])
    pixels = video * torch.tensor(module.normalization.std).view(3, 1, 1, 1) + torch.tensor(
        module.normalization.mean
    ).view(3, 1, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    torch.testing.assert_close(pixels * 255, first["video"].float(), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="uint8"):
        module.normalize(video)
    assert first["video_id"] == module.records["test"][0].video_id and first["label"] == 0


def test_transform_output_layout():
    frames = torch.randint(0, 256, (5, 40, 60, 3), dtype=torch.uint8)
    out = eval_transform(32, 36)(frames)
    assert out.shape == (3, 5, 32, 32)
    assert train_transform(32, (36, 40), flip=True)(frames).shape == (3, 5, 32, 32)
    with pytest.raises(ValueError, match="crop_size"):
        train_transform(64, (32, 40), flip=True)


def test_missing_and_corrupt_videos_name_the_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4: no such file"):
        open_video(missing)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(VideoDecodeError, match=r"corrupt\.mp4: cannot open video"):
        open_video(corrupt)
    dataset = ClipDataset([VideoRecord(str(missing), 0, "x")], 4, 1, lambda t, crop=0: t, train=False)
    with pytest.raises(VideoDecodeError, match=re.escape(str(missing))):
        dataset[0]


def test_interval_records_sample_inside_the_interval(tmp_path):
    frames = np.zeros((30, 32, 32, 3), np.uint8)
    for t in range(30):
        frames[t] = t * 8  # frame index readable from the brightness
    path = tmp_path / "ramp.mp4"
    write_video(path, frames, fps=10)
    dataset = ClipDataset([VideoRecord(str(path), 0, "ramp", 10, 19)], 4, 2, lambda t, crop=0: t.float(), train=False)
    values = dataset[0]["video"].mean(dim=(1, 2, 3)) / 8
    np.testing.assert_allclose(values.numpy(), [12, 14, 16, 18], atol=0.6)
    assert Path(path).is_file()
