"""Which frames of a video make a clip: training windows, evaluation clips, and the short-video rules.

Positions are measured in frames of the video *resampled to* ``target_fps`` when one is given: a clip of
``frames_per_clip`` frames ``stride`` apart at ``target_fps`` covers the same time in a 25 fps and a 60 fps video.

A video shorter than the clip's window is never dropped: its clip is filled by the rule of the backbone's original
code base (``short_videos``), so every model of a comparison is scored on the same test videos:

- ``clamp`` (PySlowFast, SlowFast and X3D): the window starts at the first frame and indices past the last frame
  are clamped to it (``temporal_sampling`` in ``slowfast/datasets/decoder.py`` clamps the same way), so the clip ends
  on repeats of the last frame.
- ``vmps`` (the authors' TimeSformer, ``timesformer/datasets/decoder.py`` of q1xiangchen/VMPs): with fewer frames
  than the clip, the video is tiled ``ceil(n / F)`` times and ``linspace(0, last, n)`` of the tiled frames is
  taken (truncated to integers, as ``torch.linspace(...).long()``); else ``linspace(0, F - 1, n)`` of the video.
- ``spread`` (this project's default for other backbones): ``n`` frames spread evenly over the whole video
  (rounded), all distinct whenever the video has ``n`` frames.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

ShortVideoRule = Literal["spread", "clamp", "vmps"]


def _source_step(stride: float, fps: float | None, target_fps: float | None) -> float:
    """Gap between sampled frames in source frames; at least 1, so consecutive frames are never the same one."""
    return max(stride * (fps / target_fps), 1.0) if fps and target_fps else float(stride)


def clip_span(frames_per_clip: int, step: float) -> float:
    """Frames of the video a clip covers, first to last sampled frame included: ``step * (frames - 1) + 1``."""
    return step * (frames_per_clip - 1) + 1


def _window(video_frames: int, frames_per_clip: int, step: float, start: float) -> np.ndarray:
    return np.minimum(np.round(start + step * np.arange(frames_per_clip)).astype(np.int64), video_frames - 1)


def short_video_indices(video_frames: int, frames_per_clip: int, step: float, rule: ShortVideoRule) -> np.ndarray:
    """The clip of a video shorter than the window, by ``rule`` (see the module docstring for the sources)."""
    if rule == "clamp":
        return _window(video_frames, frames_per_clip, step, 0.0)
    if rule == "vmps":
        tiled = video_frames * math.ceil(frames_per_clip / video_frames) if video_frames < frames_per_clip else 0
        last = (tiled or video_frames) - 1
        return torch.linspace(0, last, frames_per_clip).long().numpy() % video_frames
    if rule == "spread":
        return np.round(np.linspace(0, video_frames - 1, frames_per_clip)).astype(np.int64)
    raise ValueError(f"short_videos must be 'spread', 'clamp' or 'vmps', got {rule!r}")


def sample_clip_indices(
    video_frames: int,
    frames_per_clip: int,
    stride: int,
    rng: np.random.Generator | None = None,
    start_frame: int = 0,
    fps: float | None = None,
    target_fps: float | None = None,
    short_videos: ShortVideoRule = "spread",
) -> np.ndarray:
    """Indices of one clip inside ``video_frames`` frames (offset by ``start_frame``).

    With ``rng`` the window starts at a uniformly random position (training); without, it is centred.
    A video shorter than the window has its clip filled by the ``short_videos`` rule instead.
    """
    if video_frames < 1:
        raise ValueError(f"cannot sample a clip from a video with {video_frames} frames")
    if frames_per_clip < 1 or stride < 1:
        raise ValueError(f"frames_per_clip and stride must be >= 1, got {frames_per_clip} and {stride}")
    step = _source_step(stride, fps, target_fps)
    span = clip_span(frames_per_clip, step)
    if span > video_frames:
        return short_video_indices(video_frames, frames_per_clip, step, short_videos) + start_frame
    slack = video_frames - span
    start = rng.uniform(0, slack) if rng is not None else slack / 2
    return _window(video_frames, frames_per_clip, step, start) + start_frame


def eval_clip_indices(
    video_frames: int,
    frames_per_clip: int,
    stride: int,
    num_clips: int,
    clip: int,
    start_frame: int = 0,
    fps: float | None = None,
    target_fps: float | None = None,
    short_videos: ShortVideoRule = "spread",
) -> np.ndarray:
    """Indices of temporal clip ``clip`` of ``num_clips`` for evaluation (a short video: see `short_video_indices`).

    The clips' windows are centred at ``(clip + 0.5) / num_clips`` of the way through the video, so they are
    spaced evenly and cover the middle of the video rather than starting at frame 0 (one clip = the centred one).
    """
    if not 0 <= clip < num_clips:
        raise ValueError(f"clip must be in [0, {num_clips}), got {clip}")
    if video_frames < 1:
        raise ValueError(f"cannot sample a clip from a video with {video_frames} frames")
    step = _source_step(stride, fps, target_fps)
    span = clip_span(frames_per_clip, step)
    if span > video_frames:
        return short_video_indices(video_frames, frames_per_clip, step, short_videos) + start_frame
    centre = (clip + 0.5) / num_clips * video_frames
    start = min(max(centre - span / 2, 0.0), video_frames - span)
    return _window(video_frames, frames_per_clip, step, start) + start_frame
