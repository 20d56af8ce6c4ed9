"""Video records and frame decoding (decord, one reader per call, no process-global state changed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video (or an interval of one: frames ``start_frame`` .. ``end_frame`` inclusive)."""

    path: str
    label: int
    video_id: str
    start_frame: int = 0
    end_frame: int | None = None


def open_video(path: str | Path, num_threads: int = 1):
    """A decord ``VideoReader`` for ``path``, or a `VideoDecodeError` naming the file."""
    import decord

    path = str(path)
    if not Path(path).is_file():
        raise VideoDecodeError(f"{path}: no such file")
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as error:  # decord raises its own DECORDError / RuntimeError with C++ text
        raise VideoDecodeError(f"{path}: cannot open video ({_first_line(error)})") from error


def read_frames(reader, indices: np.ndarray, path: str) -> np.ndarray:
    """Frames at ``indices`` as a ``T x H x W x 3`` uint8 RGB array."""
    try:
        return reader.get_batch(np.asarray(indices, dtype=np.int64).tolist()).asnumpy()
    except Exception as error:
        reason = _first_line(error)
        if "DECORDArrayCopyFromTo" in reason:
            reason += "; decord 0.6 cannot decode some narrow frame widths (16, 24, 48 px seen): re-encode the video"
        raise VideoDecodeError(f"{path}: cannot decode frames {[int(i) for i in indices]} ({reason})") from error


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 12) -> None:
    """Encode ``T x H x W x 3`` uint8 RGB frames as H.264 mp4 with PyAV; written to a temporary name, then moved,
    so an interrupted write never leaves a half file under ``path``."""
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video needs T x H x W x 3 uint8 frames, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"libx264 needs even frame sizes, got {frames.shape[2]} x {frames.shape[1]} for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.mp4")
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "x264-params": "threads=1:lookahead-threads=1",
        }
        stream.codec_context.thread_count = 1  # deterministic bytes for a given input
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")))
        container.mux(stream.encode())
    partial.replace(path)


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV 4:2:0 planes stacked as ``(3H/2) x W`` uint8 (the layout PyAV expects).

    Done here rather than by swscale, whose edge handling reads frame padding and so made encodes of the same
    frames differ now and then.
    """
    rgb = frame.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    height, width = y.shape

    def subsample(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)).reshape(height // 4, width)

    planes = np.concatenate([y, subsample(u), subsample(v)], axis=0)
    return np.clip(np.round(planes), 0, 255).astype(np.uint8)
