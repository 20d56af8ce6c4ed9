"""Which frames of a video make a clip."""

from __future__ import annotations

import numpy as np


def clip_span(num_frames: int, stride: int) -> int:
    """Number of source frames covered by ``num_frames`` frames taken every ``stride`` frames."""
    return (num_frames - 1) * stride + 1


def sample_clip_indices(
    video_frames: int,
    num_frames: int,
    stride: int,
    rng: np.random.Generator | None = None,
    start_frame: int = 0,
) -> np.ndarray:
    """Indices of a clip of ``num_frames`` frames, ``stride`` apart, inside ``video_frames`` frames.

    With ``rng`` the window starts at a random position (training); without, it is centred (evaluation).
    A video shorter than the window has its frames spread evenly over the whole video instead; consecutive
    indices then stay distinct whenever the video has at least ``num_frames`` frames.
    """
    if video_frames < 1:
        raise ValueError(f"cannot sample a clip from a video with {video_frames} frames")
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames} and {stride}")
    span = clip_span(num_frames, stride)
    if span <= video_frames:
        slack = video_frames - span
        start = int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
        indices = start + stride * np.arange(num_frames)
    else:
        indices = np.round(np.linspace(0, video_frames - 1, num_frames)).astype(np.int64)
    return indices.astype(np.int64) + start_frame
