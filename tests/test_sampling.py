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
