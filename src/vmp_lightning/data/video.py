"""Decoding: one interface over decord (default), PyAV and torchcodec, and the frame index that numbers frames as a
full decode does. (Writing videos: `video_writer`; `VideoRecord`: `annotations`.)

Readers are opened per item inside the worker that needs them, with one decoder thread by default, and no
process-global state (decord's bridge, thread counts) is changed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from vmp_lightning.errors import UserError
from vmp_lightning.files import atomic_write

if TYPE_CHECKING:
    import av

Backend = Literal["decord", "pyav", "torchcodec"]
BACKENDS: tuple[str, ...] = ("decord", "pyav", "torchcodec")


class VideoDecodeError(UserError, RuntimeError):
    """A video could not be opened or decoded; the message names the file and the reason."""


class VideoReader:
    """Random access to the frames of one video: ``len(reader)``, ``reader.fps``, ``reader.read(indices)``.

    Frame i is the i-th frame of a full sequential decode, whatever the container's timestamps or header say.
    """

    path: str
    fps: float

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices) -> np.ndarray:
        """Frames at ``indices`` as ``T x H x W x 3`` uint8 RGB."""
        raise NotImplementedError


#: Frames a decoder may hold back to reorder B-frames; timestamps that move a frame further are not believed.
MAX_REORDER = 16
#: Packets decoded when indexing, to check that the timestamps give the decoder's output order.
ORDER_CHECK_PACKETS = 48


@dataclass(frozen=True)
class FrameIndex:
    """Where the frames of a full decode are, read from the video's packets (no decoding but a short check).

    ``packet_pts``: each packet's presentation timestamp in file (decode) order; ``keyframe``: which packets are key
    frames; ``frames``: the number of frames (packets with data); ``header_frames``: what the container claims.
    When the timestamps can be trusted (``untrusted`` empty), frame i is the packet with the i-th smallest
    timestamp, so a reader may seek to a key frame and find frames by timestamp; otherwise ``untrusted`` says why
    and frames are counted in a decode from the start.
    """

    frames: int
    header_frames: int
    fps: float
    packet_pts: np.ndarray
    keyframe: np.ndarray
    untrusted: str

    @functools.cached_property
    def packet_of_frame(self) -> np.ndarray:
        """The packet of each frame number (trusted timestamps: packets in timestamp order)."""
        return np.argsort(self.packet_pts, kind="stable")

    @functools.cached_property
    def frame_of_packet(self) -> np.ndarray:
        """The frame number of each packet (the rank of its timestamp: the inverse of `packet_of_frame`)."""
        inverse = np.empty_like(self.packet_of_frame)
        inverse[self.packet_of_frame] = np.arange(len(inverse))
        return inverse

    @functools.cached_property
    def frame_of_pts(self) -> dict[int, int]:
        """Frame number by timestamp (trusted timestamps only)."""
        return {int(pts): int(frame) for pts, frame in zip(self.packet_pts, self.frame_of_packet, strict=True)}


def _distrust(pts: list, keyframe: list, reorders: bool, output_pts: list) -> str:
    """Why these timestamps cannot number the frames of a full decode ('' when they can)."""
    if not pts:
        return "no packets"
    if any(p is None for p in pts):
        return "packets without timestamps"
    values = np.asarray(pts, dtype=np.int64)
    if len(np.unique(values)) < len(values):
        return "duplicated timestamps"
    if not keyframe[0]:
        return "the first packet is not a key frame"
    shift = np.abs(np.argsort(values, kind="stable") - np.arange(len(values))).max()
    if shift > MAX_REORDER:
        return f"timestamps move frames by {int(shift)} places"
    if not reorders and shift:
        return "timestamps out of order in a stream without B-frames"
    if output_pts != np.sort(values)[: len(output_pts)].tolist():
        return "the decoder's frame order differs from the timestamps' (B-frames with pts = dts?)"
    return ""


#: How many files a process remembers what it learnt of (a dataset's; about 1 KB each for short clips).
FILES_REMEMBERED = 1 << 14


@functools.lru_cache(maxsize=FILES_REMEMBERED)
def _cached_index(path: str, size: int, mtime_ns: int) -> FrameIndex:
    stored = _index_file(path, size, mtime_ns)
    try:
        with np.load(stored) as saved:
            return FrameIndex(
                frames=int(saved["frames"]),
                header_frames=int(saved["header_frames"]),
                fps=float(saved["fps"]),
                packet_pts=saved["packet_pts"],
                keyframe=saved["keyframe"],
                untrusted=str(saved["untrusted"]),
            )
    except (OSError, KeyError, ValueError):  # not indexed on this machine yet (or an unreadable cache file)
        pass
    index = _build_index(path)
    with contextlib.suppress(OSError), atomic_write(stored) as partial:  # read-only home: indexed again next time
        np.savez(partial, **{f.name: np.asarray(getattr(index, f.name)) for f in fields(index)})
    return index


def index_cache_folder() -> Path:
    """Where frame indexes are kept between runs: ``$VMP_LIGHTNING_CACHE/frame-index`` (default
    ``~/.cache/vmp-lightning``); never beside the videos, which are the user's."""
    root = os.environ.get("VMP_LIGHTNING_CACHE") or Path.home() / ".cache" / "vmp-lightning"
    return Path(root) / "frame-index"


def _index_file(path: str, size: int, mtime_ns: int) -> Path:
    name = hashlib.sha1(f"{INDEX_VERSION}|{Path(path).resolve()}|{size}|{mtime_ns}".encode()).hexdigest()
    return index_cache_folder() / f"{name}.npz"


#: Bumped when what an index holds, or how it is made, changes: older cached indexes are then not read.
INDEX_VERSION = 2


def _build_index(path: str) -> FrameIndex:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        pts, keyframe, output_pts = [], [], []
        checking = True  # decode the start: does the decoder's output follow the timestamps?
        for packet in container.demux(stream):
            if packet.size:
                pts.append(packet.pts)
                keyframe.append(packet.is_keyframe)
            if checking and len(pts) <= ORDER_CHECK_PACKETS:
                try:
                    output_pts += [frame.pts for frame in packet.decode()]
                except av.error.FFmpegError:  # damage is for the reads (and check-videos --full) to report
                    checking = False
        reorders, header_frames = bool(stream.codec_context.has_b_frames), int(stream.frames)
        untrusted = _distrust(pts, keyframe, reorders, output_pts[: ORDER_CHECK_PACKETS - MAX_REORDER])
    # untrusted timestamps: reads count frames in a decode from the start, so the count is that decode's too (a
    # packet may give no frame: OpenCV's box.mp4 has 456 packets and 455 frames)
    frames = decodable_frames(path)[0] if untrusted and pts else len(pts)
    return FrameIndex(
        frames=frames,
        header_frames=header_frames,
        fps=float(rate),
        packet_pts=np.asarray([p if p is not None else -1 for p in pts], dtype=np.int64),
        keyframe=np.asarray(keyframe, dtype=bool),
        untrusted=untrusted,
    )


def decodable_frames(path: str) -> tuple[int, str]:
    """Frames a decode of every packet gives, and the first error (``frame N: reason``; '' when none)."""
    import av

    count, first_error = 0, ""
    with av.open(path) as container:
        for packet in container.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError as error:
                first_error = first_error or f"frame {count}: {error}"
    return count, first_error


def index_video(path: str | Path) -> FrameIndex:
    """The `FrameIndex` of a video, made once per process for an unchanged file (keyed by path, size and mtime:
    the frame-order check is never repeated per read, and a rewritten file is indexed again)."""
    status = Path(path).stat()
    return _cached_index(str(path), status.st_size, status.st_mtime_ns)


class DecordReader(VideoReader):
    """decord numbers frames by timestamp: exact where `FrameIndex` trusts the timestamps (`open_video` checks)."""

    def __init__(self, path: str, num_threads: int) -> None:
        import decord

        self.path = path
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
        self.fps = float(self._reader.get_avg_fps())

    def __len__(self) -> int:
        return len(self._reader)

    def has_timestamps(self) -> bool:
        """Whether decord found the frames' times, by which it seeks. In an AVI of H.264 written without B-frames
        it does not (every time is about -3e17: FFmpeg's "no timestamp"), and every random read returns frame 0."""
        times = self._reader.get_frame_timestamp([0, len(self._reader) - 1])[:, 0]
        return bool(times[0] >= 0 and (len(self._reader) == 1 or times[1] > times[0]))

    def read(self, indices) -> np.ndarray:
        return self._reader.get_batch([int(i) for i in indices]).asnumpy()


def displayed_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as ``H x W x 3`` uint8 RGB the way players show it: its display matrix's rotation applied
    (a phone video filmed upright is stored sideways), as decord and torchcodec return it."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = (int(getattr(frame, "rotation", 0) or 0) // 90) % 4  # counter-clockwise, as the matrix says
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def video_rotation(path: str) -> int:
    """The rotation (degrees counter-clockwise) a video's display matrix asks for; 0 without one."""
    import av

    with av.open(path) as container:
        frame = next(container.decode(video=0), None)
        return int(getattr(frame, "rotation", 0) or 0) % 360 if frame is not None else 0


class PyAVReader(VideoReader):
    """Frames of a full decode by count. With trusted timestamps it seeks to the last key frame before the first
    wanted frame and identifies each decoded frame by its timestamp (checking that they come out in order);
    otherwise, or when that check fails, it decodes from the start and counts."""

    def __init__(self, path: str, num_threads: int, index: FrameIndex | None = None) -> None:
        import av

        self.path = path
        self.index = index or index_video(path)
        self.fps = self.index.fps
        self._container = av.open(path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = num_threads

    def __len__(self) -> int:
        return self.index.frames

    def _decoded(self, from_packet: int):
        """Decoded frames, from the key frame at packet ``from_packet`` on (0: the start of the file)."""
        self._container.seek(int(self.index.packet_pts[from_packet]) if from_packet else 0, stream=self._stream,
                              backward=True, any_frame=False)  # fmt: skip
        for packet in self._container.demux(self._stream):
            yield from packet.decode()

    def _key_packet_before(self, frames: list[int]) -> int:
        """The last key frame a decode of ``frames`` can start from (trusted timestamps): in file order before all
        of their packets, and not itself shown after the first of them."""
        index, first = self.index, min(frames)
        earliest_packet = index.packet_of_frame[frames].min()
        keys = [k for k in np.flatnonzero(index.keyframe[: earliest_packet + 1]) if index.frame_of_packet[k] <= first]
        return int(keys[-1]) if keys else 0

    def iter_frames(self, first: int, last: int | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames ``first .. last`` (inclusive; None: to the end) of a full decode as ``(number, frame)``, decoded
        from the key frame before ``first`` where the timestamps are trusted (a cut 50 minutes into a broadcast
        decodes seconds, not the 50 minutes before it); a frame out of the promised order falls back to counting
        from the start, going on after the last frame given."""
        last = self.index.frames - 1 if last is None else min(last, self.index.frames - 1)
        wanted = first  # the next frame to give
        if not self.index.untrusted and first > 0:
            frame_of_pts = self.index.frame_of_pts
            previous = -1
            for frame in self._decoded(self._key_packet_before([first])):
                number = frame_of_pts.get(frame.pts)
                if number is None or (number != previous + 1 if previous >= 0 else number > first):
                    break  # not the order the timestamps promised, or a frame skipped: count instead
                previous = number
                if number == wanted:
                    yield number, frame
                    wanted += 1
                    if wanted > last:
                        return
        for number, frame in enumerate(self._decoded(0)):
            if number > last:
                return
            if number >= wanted:
                yield number, frame
                wanted += 1

    def read(self, indices) -> np.ndarray:
        order = [int(i) for i in indices]
        wanted = set(order)
        frames = self.iter_frames(min(wanted), max(wanted))
        found = {number: displayed_rgb(frame) for number, frame in frames if number in wanted}
        missing = sorted(wanted - set(found))
        if missing:
            raise ValueError(f"frames {missing[:5]} not found: a full decode gives fewer frames")
        return np.stack([found[i] for i in order])

    def __del__(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()


class TorchCodecReader(VideoReader):
    """torchcodec numbers frames by timestamp: exact where `FrameIndex` trusts the timestamps."""

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


#: The module each decoder backend imports.
BACKEND_MODULES = {"decord": "decord", "pyav": "av", "torchcodec": "torchcodec.decoders"}


def available_backends() -> list[str]:
    """The decoder backends that import here (torchcodec needs FFmpeg's shared libraries)."""
    names = []
    for name, module in BACKEND_MODULES.items():
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
    try:
        status = os.stat(path)
    except OSError:
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        raise VideoDecodeError(f"{path}: no such file")
    if status.st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")
    file = (path, status.st_size, status.st_mtime_ns)  # an unchanged file: what was learnt of it holds
    try:
        index = _cached_index(*file)
        reader = None if backend == "pyav" or index.untrusted else _READERS[backend](path, num_threads)
        if reader is not None and len(reader) != index.frames:
            _warn_once(path, f"{backend} counts {len(reader)} frames, a full decode {index.frames}: PyAV decodes it")
            reader = None
        elif isinstance(reader, DecordReader) and not _decord_finds_times(file, reader):
            _warn_once(path, "decord finds no frame times in this file and would return wrong frames: PyAV decodes it")
            reader = None
        elif reader is None and backend != "pyav":
            __import__(BACKEND_MODULES[backend])  # not opened for this file, but asked for: it must be installed
            _warn_once(path, f"{index.untrusted}: {backend} would return wrong frames, so PyAV decodes this video")
        if reader is None:
            reader = PyAVReader(path, num_threads, index)
    except ImportError as error:
        raise VideoDecodeError(f"{path}: decoder backend {backend!r} is not installed ({error})") from error
    except Exception as error:  # each library raises its own error types with C++ text
        raise VideoDecodeError(f"{path}: cannot open video ({_first_line(error)})") from error
    if len(reader) < 1:
        raise VideoDecodeError(f"{path}: the video has no frames")
    return reader


_DECORD_FINDS_TIMES: dict[tuple[str, int, int], bool] = {}


def _decord_finds_times(file: tuple[str, int, int], reader: DecordReader) -> bool:
    """`DecordReader.has_timestamps` once per unchanged file and process: it costs a small clip's read 3 %
    (benchmarks/loader_throughput.py's item stages)."""
    if file not in _DECORD_FINDS_TIMES:
        if len(_DECORD_FINDS_TIMES) >= FILES_REMEMBERED:
            _DECORD_FINDS_TIMES.clear()
        _DECORD_FINDS_TIMES[file] = reader.has_timestamps()
    return _DECORD_FINDS_TIMES[file]


_WARNED: set[str] = set()


def _warn_once(path: str, message: str) -> None:
    """One warning per file (and process), whatever the message says."""
    if path not in _WARNED:
        _WARNED.add(path)
        warnings.warn(f"{path}: {message}", stacklevel=3)


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
