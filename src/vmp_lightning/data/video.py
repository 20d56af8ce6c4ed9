"""Video records and decoding: one interface over decord (default), PyAV and torchcodec.

Readers are opened per item inside the worker that needs them, with one decoder thread by default, and no
process-global state (decord's bridge, thread counts) is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

Backend = Literal["decord", "pyav", "torchcodec"]
BACKENDS: tuple[str, ...] = ("decord", "pyav", "torchcodec")


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


class VideoReader:
    """Random access to the frames of one video: ``len(reader)``, ``reader.fps``, ``reader.read(indices)``."""

    path: str
    fps: float

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices) -> np.ndarray:
        """Frames at ``indices`` as ``T x H x W x 3`` uint8 RGB."""
        raise NotImplementedError


class DecordReader(VideoReader):
    def __init__(self, path: str, num_threads: int) -> None:
        import decord

        self.path = path
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
        self.fps = float(self._reader.get_avg_fps())

    def __len__(self) -> int:
        return len(self._reader)

    def read(self, indices) -> np.ndarray:
        return self._reader.get_batch([int(i) for i in indices]).asnumpy()


class PyAVReader(VideoReader):
    """Frames counted in presentation order. In containers with reliable timestamps (mp4, mov, mkv, webm) it seeks
    to the key frame before the first wanted frame and numbers frames by timestamp from the first frame's; in
    others (AVI with B-frames has none) it decodes from the start and counts."""

    TIMESTAMPED = ("mov", "mp4", "matroska", "webm")

    def __init__(self, path: str, num_threads: int) -> None:
        import av

        self.path = path
        self._container = av.open(path)
        if not self._container.streams.video:
            raise ValueError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = num_threads
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        self.fps = float(rate)
        first = next(self._container.decode(self._stream), None)
        if first is None:
            raise ValueError("no decodable frame")
        self._first_pts = first.pts
        self._seekable = first.pts is not None and any(name in self._container.format.name for name in self.TIMESTAMPED)
        frames = self._stream.frames
        if not frames and self._stream.duration:
            frames = round(float(self._stream.duration * self._stream.time_base) * self.fps)
        self._frames = int(frames)

    def __len__(self) -> int:
        return self._frames

    def _frames_from(self, first_wanted: int):
        """(index, frame) pairs from at or before ``first_wanted`` on."""
        if self._seekable and first_wanted > 0:
            target = self._first_pts + int(first_wanted / self.fps / self._stream.time_base)
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            for frame in self._container.decode(self._stream):
                yield round(float((frame.pts - self._first_pts) * self._stream.time_base) * self.fps), frame
        else:
            self._container.seek(0, stream=self._stream)
            yield from enumerate(self._container.decode(self._stream))

    def read(self, indices) -> np.ndarray:
        wanted = [int(i) for i in indices]
        last = max(wanted)
        found: dict[int, np.ndarray] = {}
        for index, frame in self._frames_from(min(wanted)):
            if index > last:
                break
            if index in wanted:
                found[index] = frame.to_ndarray(format="rgb24")
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise ValueError(f"frames {missing[:5]} not found (the video holds fewer frames than it claims)")
        return np.stack([found[i] for i in wanted])

    def __del__(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()


class TorchCodecReader(VideoReader):
    def __init__(self, path: str, num_threads: int) -> None:
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self._decoder = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=num_threads)
        self.fps = float(self._decoder.metadata.average_fps)

    def __len__(self) -> int:
        return len(self._decoder)

    def read(self, indices) -> np.ndarray:
        return self._decoder.get_frames_at([int(i) for i in indices]).data.numpy()


_READERS = {"decord": DecordReader, "pyav": PyAVReader, "torchcodec": TorchCodecReader}


def available_backends() -> list[str]:
    """The decoder backends that import here (torchcodec needs FFmpeg's shared libraries)."""
    names = []
    for name, module in (("decord", "decord"), ("pyav", "av"), ("torchcodec", "torchcodec.decoders")):
        try:
            __import__(module)
        except Exception:  # ImportError, or torchcodec's RuntimeError when FFmpeg libraries are missing
            continue
        names.append(name)
    return names


def open_video(path: str | Path, backend: Backend = "decord", num_threads: int = 1) -> VideoReader:
    """A reader for ``path``, or a `VideoDecodeError` naming the file and the reason."""
    if backend not in _READERS:
        raise ValueError(f"unknown decoder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    path = str(path)
    if not Path(path).is_file():
        raise VideoDecodeError(f"{path}: no such file")
    if Path(path).stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")
    try:
        reader = _READERS[backend](path, num_threads)
    except ImportError as error:
        raise VideoDecodeError(f"{path}: decoder backend {backend!r} is not installed ({error})") from error
    except Exception as error:  # each library raises its own error types with C++ text
        raise VideoDecodeError(f"{path}: cannot open video ({_first_line(error)})") from error
    if len(reader) < 1:
        raise VideoDecodeError(f"{path}: the video has no frames")
    return reader


def read_frames(reader: VideoReader, indices) -> np.ndarray:
    """Frames at ``indices`` (``T x H x W x 3`` uint8 RGB), or a `VideoDecodeError` naming the file."""
    try:
        return reader.read(indices)
    except Exception as error:
        reason = _first_line(error)
        if "DECORDArrayCopyFromTo" in reason:
            reason += "; decord 0.6 cannot decode some narrow frame widths (16, 24, 48 px seen): re-encode the video"
        raise VideoDecodeError(f"{reader.path}: cannot decode frames {[int(i) for i in indices]} ({reason})") from error


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 12, gop: int | None = None) -> None:
    """Encode ``T x H x W x 3`` uint8 RGB frames as H.264 mp4 with PyAV; written to a temporary name, then moved,
    so an interrupted write never leaves a half file under ``path``. ``gop``: key-frame interval (short intervals
    make random access cheap)."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video needs T x H x W x 3 uint8 frames, got {frames.shape} {frames.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")  # the suffix picks the container (mp4, avi, ...)
    with VideoWriter(partial, frames.shape[2], frames.shape[1], fps, crf, gop) as writer:
        for frame in frames:
            writer.write(frame)
    partial.replace(path)


class VideoWriter:
    """Frame-by-frame H.264 writer (yuv420p, deterministic bytes for the same frames)."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 12,
        gop: int | None = None,
        container_options: dict[str, str] | None = None,
    ):
        import av

        if width % 2 or height % 2:
            raise ValueError(f"libx264 needs even frame sizes, got {width} x {height} for {path}")
        self._container = av.open(str(path), mode="w", options=container_options or {})
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        options = {"crf": str(crf), "preset": "veryfast", "x264-params": "threads=1:lookahead-threads=1"}
        if gop is not None:
            options["g"] = str(gop)
        self._stream.options = options
        self._stream.codec_context.thread_count = 1  # deterministic bytes for a given input
        self._frame_type = av.VideoFrame

    def write(self, frame: np.ndarray) -> None:
        planes = rgb_to_yuv420p(frame)
        self._container.mux(self._stream.encode(self._frame_type.from_ndarray(planes, format="yuv420p")))

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
