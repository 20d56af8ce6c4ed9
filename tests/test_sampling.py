"""Which frames make a clip (data/sampling.py): training windows, test clips, fps, short videos."""

from __future__ import annotations

import numpy as np
import pytest

from vmp_lightning.data import (
    eval_clip_indices,
    sample_clip_indices,
)


def eval_clip_indices_window_centre_and_random():
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


def test_the_short_video_rules_are_the_originals_arithmetic():
    """By hand from the originals' code: PySlowFast's temporal_sampling (linspace over the window from frame 0,
    clamped into the video) at our stride; the VMPs decoder (the video tiled when shorter than the clip, then
    torch.linspace(0, last, n).long())."""
    from vmp_lightning.data.sampling import short_video_indices

    assert short_video_indices(5, 4, 3.0, "clamp").tolist() == [0, 3, 4, 4]
    assert short_video_indices(3, 4, 2.0, "vmps").tolist() == [0, 1, 0, 2]  # tiled [0 1 2 0 1 2]: 0, 1.67, 3.33, 5
    assert short_video_indices(10, 4, 5.0, "vmps").tolist() == [0, 3, 6, 9]  # linspace(0, 9, 4) = 0, 3, 6, 9
    assert short_video_indices(10, 7, 5.0, "vmps").tolist() == [0, 1, 3, 4, 6, 7, 9]  # 1.5 steps, truncated
    assert eval_clip_indices(10, 9, 4, 3, 2, short_videos="clamp").tolist() == [0, 4, 8] + [9] * 6
    assert sample_clip_indices(12, 9, 4, np.random.default_rng(0), short_videos="vmps").tolist() == [
        0, 1, 2, 4, 5, 6, 8, 9, 11,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="short_videos must be"):
        short_video_indices(3, 4, 2.0, "drop")


def test_target_fps_scales_the_stride():
    at_30 = sample_clip_indices(300, 8, 4, fps=30, target_fps=30)
    at_60 = sample_clip_indices(600, 8, 4, fps=60, target_fps=30)
    assert np.all(np.diff(at_30) == 4) and np.all(np.diff(at_60) == 8)
    # a video slower than the target is never sampled twice at the same frame
    slow = sample_clip_indices(100, 8, 1, fps=10, target_fps=30)
    assert np.all(np.diff(slow) >= 1)


def test_eval_clips_are_spread_evenly_and_not_from_frame_zero():
    clips = [eval_clip_indices(90, 9, 1, 3, c) for c in range(3)]
    assert [c.mean() for c in clips] == pytest.approx([15, 45, 75], abs=1)
    assert clips[0][0] > 0
    np.testing.assert_array_equal(eval_clip_indices(90, 9, 1, 1, 0), sample_clip_indices(90, 9, 1))
    with pytest.raises(ValueError, match="clip must be in"):
        eval_clip_indices(90, 9, 1, 3, 3)
    short = eval_clip_indices(10, 9, 4, 3, 2)  # window longer than the video: spread, distinct frames
    assert len(set(short.tolist())) == 9
