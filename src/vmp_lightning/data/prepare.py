"""Preparation: cut annotated intervals into their own clips, densely key-framed and resized, resumably.

The shared machinery; each dataset's own step (which clips, which lists) is in its file under `data/datasets/`
and registers itself as a `vmp-lightning prepare <name>` command with a module-level ``PREPARE``.

Short key-frame intervals make random access cheap (MMAction2's benchmark: about half the loading cost), and a
smaller short side makes decoding cheaper still. Every output is written to a temporary name and moved into
place, so an interrupted run leaves no half files and a re-run continues where it stopped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from vmp_lightning.data.parallel import map_with_progress
from vmp_lightning.data.video import PyAVReader, VideoDecodeError, displayed_rgb
from vmp_lightning.data.video_writer import VideoWriter
from vmp_lightning.files import atomic_write


@dataclass(frozen=True)
class PrepareCommand:
    """A dataset's `vmp-lightning prepare <name>`: its arguments and the step that runs on them."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, dict], PrepareReport]  # (arguments, shared options: short_side, gop)
    next_step: Callable[[argparse.Namespace], str]  # what to run once it is done


def check_prepared(dataset: str, root: str | Path) -> str:
    """The step after a prepare (`PrepareCommand.next_step`): check what it wrote, as the manifests will read it."""
    return (
        f"vmp-lightning check-videos --config configs/data/{dataset}.yaml --data.init_args.root {root}; "
        f"the manifests read DATA_ROOT/{dataset}"
    )


@dataclass
class PrepareReport:
    written: int = 0
    kept: int = 0
    problems: list[str] = field(default_factory=list)
    queued: list[tuple[str, str, int, int | None]] = field(default_factory=list)  # (source, target, start, end)

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

    written = 0
    with atomic_write(target) as partial:
        try:
            reader = PyAVReader(str(source), num_threads=0)  # FFmpeg's own thread count: one cut per process
            writer = None
            for _, frame in reader.iter_frames(start_frame, end_frame):
                rgb = displayed_rgb(frame)  # the cut holds no display matrix: upright pixels
                height, width = _resized(*rgb.shape[:2], short_side)
                if (height, width) != rgb.shape[:2]:
                    tensor = torch.from_numpy(rgb).permute(2, 0, 1)
                    rgb = F.resize(tensor, [height, width], antialias=True).permute(1, 2, 0).numpy()
                if writer is None:
                    writer = VideoWriter(partial, width, height, reader.fps, crf=crf, gop=gop)
                writer.write(np.ascontiguousarray(rgb))
                written += 1
            if writer is not None:
                writer.close()
        except (av.error.FFmpegError, ValueError) as error:
            raise VideoDecodeError(f"{source}: cannot decode ({error})") from error
        if written == 0:
            raise VideoDecodeError(f"{source}: no frames in [{start_frame}, {end_frame}]")
    return written


def cut_into_report(report: PrepareReport, source: Path, target: Path, start: int, end: int | None) -> None:
    """Queue the cut of ``source`` into ``target`` (`cut_queued` makes it) unless ``target`` exists already (then
    it is kept) or ``source`` is missing (a problem); counted in ``report``."""
    if target.is_file():
        report.kept += 1
    elif not source.is_file():
        report.problems.append(f"missing source video {source}")
    else:
        report.queued.append((str(source), str(target), start, end))


def _cut(job: tuple[str, str, int, int | None], options: dict) -> str:
    try:
        cut_clip(*job, **options)
        return ""
    except VideoDecodeError as error:
        return str(error)


def cut_queued(report: PrepareReport, workers: int = 1, **options) -> PrepareReport:
    """Make the queued cuts (`cut_clip` ``options``) over ``workers`` processes, with a progress bar; the same
    files as one by one."""
    errors = map_with_progress(partial(_cut, options=options), report.queued, workers, "cutting clips")
    report.written += sum(not error for error in errors)
    report.problems += [error for error in errors if error]
    report.queued = []
    return report
