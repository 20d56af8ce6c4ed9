"""`vmp-lightning check-videos`: decode every video of a dataset once and report the ones that would fail."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from vmp_lightning.data.datamodule import SPLITS, VideoDataModule
from vmp_lightning.data.video import VideoDecodeError, open_video, read_frames


@dataclass(frozen=True)
class VideoCheck:
    split: str
    path: str
    status: str  # ok | missing | empty | unreadable | too_short | frame_count_mismatch
    frames: int
    message: str = ""


def check_video(
    path: str, frames_per_clip: int, start: int = 0, end: int | None = None, backend: str = "decord"
) -> VideoCheck:
    """Open ``path``, check the interval holds ``frames_per_clip`` frames, and decode its first and last frame."""
    if not Path(path).is_file():
        return VideoCheck("", path, "missing", 0, "no such file")
    if Path(path).stat().st_size == 0:
        return VideoCheck("", path, "empty", 0, "0 bytes")
    try:
        reader = open_video(path, backend)
    except VideoDecodeError as error:
        return VideoCheck("", path, "unreadable", 0, str(error))
    frames = len(reader)
    claimed = header_frame_count(path)
    if claimed and claimed != frames:
        return VideoCheck("", path, "frame_count_mismatch", frames, f"the header claims {claimed} frames")
    last = frames - 1 if end is None else min(end, frames - 1)
    if last - start + 1 < frames_per_clip:
        return VideoCheck(
            "", path, "too_short", frames, f"{max(last - start + 1, 0)} frames, a clip needs {frames_per_clip}"
        )
    try:
        read_frames(reader, [start])
    except VideoDecodeError as error:
        return VideoCheck("", path, "unreadable", frames, str(error))
    try:
        read_frames(reader, [last])
    except VideoDecodeError as error:
        return VideoCheck("", path, "frame_count_mismatch", frames, f"the header claims {frames} frames: {error}")
    return VideoCheck("", path, "ok", frames)


def header_frame_count(path: str) -> int:
    """The frame count the container header states (0 when it states none or cannot be read)."""
    import av

    try:
        with av.open(path) as container:
            return int(container.streams.video[0].frames) if container.streams.video else 0
    except Exception:  # a file PyAV cannot open has no usable header; the decoder check reports it
        return 0


def check_datamodule(datamodule: VideoDataModule) -> list[VideoCheck]:
    """Every record of every split, including the ones the annotation lists but the disk lacks."""
    datamodule.setup()
    results = []
    missing = getattr(getattr(datamodule, "annotations", None), "missing", [])
    results += [VideoCheck("any", path, "missing", 0, "listed in the annotation, not on disk") for path in missing]
    seen = set()
    for split in SPLITS:
        for record in datamodule.records.get(split, []):
            key = (record.path, record.start_frame, record.end_frame)
            if key in seen:
                continue
            seen.add(key)
            check = check_video(
                record.path, datamodule.frames_per_clip, record.start_frame, record.end_frame, datamodule.backend
            )
            results.append(replace(check, split=split))
    return results


def write_report(results: list[VideoCheck], csv_path: str | Path) -> str:
    """Write all results to ``csv_path``; return a table of the problems and a count per status."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "path", "status", "frames", "message"])
        writer.writerows([r.split, r.path, r.status, r.frames, r.message] for r in results)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    problems = [r for r in results if r.status != "ok"]
    lines = [f"{'status':<22} {'split':<6} {'frames':>7}  path / reason"]
    lines += [f"{r.status:<22} {r.split:<6} {r.frames:>7}  {r.path}  {r.message}" for r in problems]
    lines.append(", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) + f"  (all rows in {csv_path})")
    return "\n".join(lines)
