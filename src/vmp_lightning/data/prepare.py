"""Preparation: cut annotated intervals into their own clips, densely key-framed and resized, resumably.

Short key-frame intervals make random access cheap (MMAction2's benchmark: about half the loading cost), and a
smaller short side makes decoding cheaper still. Every output is written to a temporary name and moved into
place, so an interrupted run leaves no half files and a re-run continues where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vmp_lightning.data.annotations import (
    FINEGYM_LISTS,
    MPII_SEQUENCES,
    parse_subaction_id,
    read_hmdb51,
    read_label_list,
    read_mpii_cooking2,
)
from vmp_lightning.data.video import VideoDecodeError, VideoWriter


@dataclass
class PrepareReport:
    written: int = 0
    kept: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"written {self.written}, already there {self.kept}, problems {len(self.problems)}"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


def _resized(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    if short_side is None:
        return height - height % 2, width - width % 2
    scale = short_side / min(height, width)
    return 2 * round(height * scale / 2), 2 * round(width * scale / 2)


def cut_clip(
    source: str | Path,
    target: str | Path,
    start_frame: int = 0,
    end_frame: int | None = None,
    short_side: int | None = 256,
    gop: int = 8,
    crf: int = 18,
) -> int:
    """Re-encode frames ``start_frame .. end_frame`` (inclusive) of ``source`` to ``target`` as H.264 with a
    key frame every ``gop`` frames and the short side resized to ``short_side``; returns the frames written."""
    import av
    import torch
    from torchvision.transforms.v2 import functional as F

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.stem}.partial{target.suffix}")
    written = 0
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25)
            writer = None
            for index, frame in enumerate(container.decode(stream)):
                if index < start_frame:
                    continue
                if end_frame is not None and index > end_frame:
                    break
                rgb = frame.to_ndarray(format="rgb24")
                height, width = _resized(*rgb.shape[:2], short_side)
                if (height, width) != rgb.shape[:2]:
                    tensor = torch.from_numpy(rgb).permute(2, 0, 1)
                    rgb = F.resize(tensor, [height, width], antialias=True).permute(1, 2, 0).numpy()
                if writer is None:
                    writer = VideoWriter(partial, width, height, fps, crf=crf, gop=gop)
                writer.write(np.ascontiguousarray(rgb))
                written += 1
            if writer is not None:
                writer.close()
    except av.error.FFmpegError as error:
        partial.unlink(missing_ok=True)
        raise VideoDecodeError(f"{source}: cannot decode ({error})") from error
    if written == 0:
        partial.unlink(missing_ok=True)
        raise VideoDecodeError(f"{source}: no frames in [{start_frame}, {end_frame}]")
    partial.replace(target)
    return written


def _cut(report: PrepareReport, source: Path, target: Path, start: int, end: int | None, **options) -> None:
    if target.is_file():
        report.kept += 1
        return
    if not source.is_file():
        report.problems.append(f"missing source video {source}")
        return
    try:
        cut_clip(source, target, start, end, **options)
        report.written += 1
    except VideoDecodeError as error:
        report.problems.append(str(error))


def prepare_hmdb51(root: str | Path, out: str | Path, **options) -> PrepareReport:
    """Re-encode the videos of all three splits into ``out/videos/<class>/<name>.mp4`` and write split files
    that name them; ``out`` is then an HMDB-51 root for `HMDB51DataModule`."""
    root, out = Path(root), Path(out)
    report = PrepareReport(problems=[f"missing video {path}" for path in read_hmdb51(root, 1).missing])
    videos = sorted((root / "videos").glob("*/*.avi"))
    for source in videos:
        _cut(report, source, out / "videos" / source.parent.name / f"{source.stem}.mp4", 0, None, **options)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split_file in sorted((root / "splits").glob("*_test_split*.txt")):
        lines = [line.replace(".avi", ".mp4") for line in split_file.read_text().splitlines()]
        (out / "splits" / split_file.name).write_text("\n".join(lines) + "\n")
    return report


def prepare_finegym(
    annotation: str | Path, videos: str | Path, root: str | Path, subset: str = "gym99", **options
) -> PrepareReport:
    """Cut the sub-actions of the ``subset`` lists (in ``root/annotations``) from the event clips
    ``videos/<youtube id>_E_<start>_<end>.mp4`` when there is one, else from the raw videos
    ``videos/<youtube id>.mp4``, into ``root/subactions/<subaction id>.mp4``.

    The annotation JSON (``finegym_annotation_info_v1.1.json``) holds, per video and event, the event's
    ``timestamps`` in seconds of the raw video and, per sub-action, ``segments[...]["timestamps"]`` in seconds
    from the event's start; a sub-action spans from its first segment's start to its last segment's end.
    """
    import av

    root, videos = Path(root), Path(videos)
    info = json.loads(Path(annotation).read_text())
    report = PrepareReport()
    train_name, val_name, _ = FINEGYM_LISTS[subset]
    ids = [i for name in (train_name, val_name) for i, _ in read_label_list(root / "annotations" / name)]
    fps_cache: dict[str, float] = {}
    for subaction_id in ids:
        video_id, event, action = parse_subaction_id(subaction_id)
        try:
            event_info = info[video_id][event]
            segments = event_info["segments"][action]["timestamps"]
            event_start = event_info["timestamps"][0][0]
        except (KeyError, IndexError, TypeError):
            report.problems.append(f"{subaction_id}: not in {annotation}")
            continue
        source = videos / f"{video_id}_{event}.mp4"
        if source.is_file():
            event_start = 0.0  # segment times are relative to the event, which this clip starts with
        else:
            source = videos / f"{video_id}.mp4"
        if source.is_file() and str(source) not in fps_cache:
            with av.open(str(source)) as container:
                fps_cache[str(source)] = float(container.streams.video[0].average_rate or 25)
        fps = fps_cache.get(str(source), 25.0)
        start = int(np.floor((event_start + segments[0][0]) * fps))
        end = int(np.ceil((event_start + segments[-1][1]) * fps))
        _cut(report, source, root / "subactions" / f"{subaction_id}.mp4", start, end, **options)
    return report


def prepare_mpii_cooking2(root: str | Path, out: str | Path, camera: str = "cam-002", **options) -> PrepareReport:
    """Cut every annotated activity of ``camera`` into ``out/clips/<split>/<class>/<video>_<start>.mp4`` and
    write ``out/{train,val,test}.txt`` and ``out/classes.txt`` for `VideoListDataModule`."""
    root, out = Path(root), Path(out)
    annotations = read_mpii_cooking2(root, camera)
    report = PrepareReport(problems=[f"missing video {path}" for path in annotations.missing])
    (out / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(annotations.class_names) + "\n")
    for split in MPII_SEQUENCES:
        lines = []
        for record in annotations.splits[split]:
            name = annotations.class_names[record.label].replace("/", "-").replace(" ", "_")
            relative = Path("clips") / split / name / f"{record.video_id}.mp4"
            _cut(report, Path(record.path), out / relative, record.start_frame, record.end_frame, **options)
            if (out / relative).is_file():
                lines.append(f"{relative} {record.label}")
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return report
