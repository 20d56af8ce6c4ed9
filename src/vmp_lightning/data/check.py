"""`vmp-lightning check-videos`: decode every video of a dataset once and report the ones that would fail."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from vmp_lightning.data.datamodule import SPLITS, VideoDataModule
from vmp_lightning.data.parallel import map_with_progress
from vmp_lightning.data.video import (
    VideoDecodeError,
    decodable_frames,
    index_video,
    open_video,
    read_frames,
    video_rotation,
)
from vmp_lightning.files import atomic_write, not_a_file

#: Statuses that make a video unusable (the command exits with 1); ``header_overstates`` is only reported.
PROBLEMS = ("missing", "empty", "unreadable", "damaged")
COLUMNS = ("split", "path", "status", "header_frames", "frames", "fps", "size", "rotation", "first_error")


@dataclass(frozen=True)
class VideoCheck:
    """One video's check. ``frames``: the frames sampling uses (with ``full``: counted in a decode of every frame);
    ``header_frames``: what the container claims; ``size``: ``W x H``; ``first_error``: what went wrong first."""

    split: str
    path: str
    status: str  # ok | header_overstates | short (both reported, not bad) | missing | empty | unreadable | damaged
    header_frames: int = 0
    frames: int = 0
    fps: float = 0.0
    size: str = ""  # as displayed: the display matrix's rotation applied
    rotation: int = 0  # degrees counter-clockwise the display matrix turns the stored frames
    first_error: str = ""


def check_video(
    path: str,
    frames_per_clip: int,
    start: int = 0,
    end: int | None = None,
    backend: str = "decord",
    full: bool = False,
) -> VideoCheck:
    """Check that ``path`` opens and that its first and last frame decode; with ``full``, decode every frame and
    count them. A readable file is never reported as bad: a header that claims more frames than there are is
    reported as ``header_overstates`` (sampling uses the true count), an interval shorter than ``frames_per_clip``
    as ``short`` (its clips are filled by the ``short_videos`` rule)."""
    if not Path(path).is_file():
        return VideoCheck("", path, "missing", first_error=not_a_file(path))
    if Path(path).stat().st_size == 0:
        return VideoCheck("", path, "empty", first_error="0 bytes")
    try:
        reader = open_video(path, backend)
        header = index_video(path).header_frames
    except VideoDecodeError as error:
        return VideoCheck("", path, "unreadable", first_error=str(error))
    check = VideoCheck("", path, "ok", header, len(reader), round(reader.fps, 3))
    if full:
        counted, error = decodable_frames(path)
        check = replace(check, frames=counted, first_error=error, status="damaged" if error else "ok")
    last = check.frames - 1 if end is None else min(end, check.frames - 1)
    try:
        first_frame = read_frames(reader, [start])[0]
        check = replace(check, size=f"{first_frame.shape[1]}x{first_frame.shape[0]}", rotation=video_rotation(path))
        if last > start:
            read_frames(reader, [last])
    except VideoDecodeError as error:
        return replace(check, status="damaged", first_error=check.first_error or str(error))
    if last - start + 1 < frames_per_clip:
        note = f"{max(last - start + 1, 0)} frames, a clip needs {frames_per_clip}: filled by data.short_videos"
        return replace(check, status="short", first_error=check.first_error or note)
    if check.status == "ok" and header > check.frames:
        return replace(check, status="header_overstates", first_error=f"the header claims {header} frames")
    return check


def check_datamodule(datamodule: VideoDataModule, full: bool = False, workers: int = 1) -> list[VideoCheck]:
    """Every record of every split, including the ones the annotation lists but the disk lacks; ``workers``
    processes check at once (the same rows as one by one), with a progress bar."""
    datamodule.setup()
    missing = getattr(getattr(datamodule, "annotations", None), "missing", [])
    results = [
        VideoCheck("any", p, "missing", first_error=f"listed in the annotation: {not_a_file(p)}") for p in missing
    ]
    jobs, splits, seen = [], [], set()
    for split in SPLITS:
        for record in datamodule.records.get(split, []):
            key = (record.path, record.start_frame, record.end_frame)
            if key not in seen:
                seen.add(key)
                jobs.append(key)
                splits.append(split)
    check = partial(_check, frames_per_clip=datamodule.frames_per_clip, backend=datamodule.backend, full=full)
    checks = map_with_progress(check, jobs, workers, "checking videos")
    return results + [replace(c, split=split) for c, split in zip(checks, splits, strict=True)]


def _check(job: tuple[str, int, int | None], frames_per_clip: int, backend: str, full: bool) -> VideoCheck:
    path, start, end = job
    return check_video(path, frames_per_clip, start, end, backend, full)


def write_report(results: list[VideoCheck], csv_path: str | Path) -> str:
    """Write all results to ``csv_path``; return a table of the problems and a count per status."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(csv_path) as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([getattr(r, column) for column in COLUMNS] for r in results)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    shown = [r for r in results if r.status != "ok"]
    lines = [f"{'status':<18} {'split':<6} {'header':>7} {'frames':>7}  path / first error"]
    lines += [
        f"{r.status:<18} {r.split:<6} {r.header_frames:>7} {r.frames:>7}  {r.path}  {r.first_error}" for r in shown
    ]
    lines.append(", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) + f"  (all rows in {csv_path})")
    return "\n".join(lines)
