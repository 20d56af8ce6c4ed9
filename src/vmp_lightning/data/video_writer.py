"""Writing videos: `write_video` (whole clips, atomically) and `VideoWriter` (frame by frame), H.264 or MPEG-4
Part 2 in yuv420p, byte-identical for the same frames when asked. The tests, the synthetic data and ``prepare``
write with them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from vmp_lightning.files import atomic_write


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, crf: int = 12, gop: int | None = None, codec: Codec = "h264"
) -> None:
    """Encode ``T x H x W x 3`` uint8 RGB frames with PyAV (`atomic_write`), byte-identical for the same frames
    (`VideoWriter` ``deterministic``). ``gop``: key-frame interval (short intervals make random access cheap);
    ``codec``: H.264, or MPEG-4 Part 2 as the official HMDB-51 AVIs hold."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video needs T x H x W x 3 uint8 frames, got {frames.shape} {frames.dtype}")
    height, width = frames.shape[1:3]
    with (
        atomic_write(path) as part,
        VideoWriter(part, width, height, fps, crf, gop, deterministic=True, codec=codec) as out,
    ):
        for frame in frames:
            out.write(frame)


#: What `VideoWriter` encodes: H.264 (libx264, with B-frames), or MPEG-4 Part 2 (DivX / XviD, no B-frames), which
#: is what HMDB-51's AVIs hold and what decord reads frame-exactly in an AVI (H.264 in an AVI has no frame times
#: decord can seek by, `DecordReader.has_timestamps`).
Codec = Literal["h264", "mpeg4"]


class VideoWriter:
    """Frame-by-frame writer (yuv420p, one encoder thread). ``deterministic``: the same bytes for the same frames,
    by running x264 without its assembly (measured here: its SIMD code gave 3-5 different encodes of the same frames
    in 8 tries); slower, meant for small synthetic videos. ``crf`` is H.264's quality; MPEG-4 uses quantiser 3."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 12,
        gop: int | None = None,
        container_options: dict[str, str] | None = None,
        deterministic: bool = False,
        codec: Codec = "h264",
    ):
        import av

        if width % 2 or height % 2:
            raise ValueError(f"{codec} needs even frame sizes, got {width} x {height} for {path}")
        if codec not in ("h264", "mpeg4"):
            raise ValueError(f"codec must be 'h264' or 'mpeg4', got {codec!r}")
        self._container = av.open(str(path), mode="w", options=container_options or {})
        self._rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264" if codec == "h264" else "mpeg4", rate=self._rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        x264 = "threads=1:lookahead-threads=1" + (":asm=0" if deterministic else "")
        options = {"crf": str(crf), "preset": "veryfast", "x264-params": x264} if codec == "h264" else {"qscale": "3"}
        if gop is not None:
            options["g"] = str(gop)
        self._stream.options = options
        self._stream.codec_context.thread_count = 1  # deterministic bytes for a given input
        self._frame_type = av.VideoFrame
        self._written = 0

    def write(self, frame: np.ndarray) -> None:
        encoded = self._frame_type.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
        encoded.pts, encoded.time_base = self._written, 1 / self._rate  # frame numbers, never left unset
        self._written += 1
        self._container.mux(self._stream.encode(encoded))

    def close(self) -> None:
        self._container.mux(self._stream.encode())
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
