"""What every annotation reader returns (`Annotations`) and how it reports a wrong layout.

Each dataset's reader (in `data/datasets/`) returns, per split, a list of `VideoRecord` and the class names
(label = index in that list). Missing roots or annotation files raise `DatasetLayoutError` naming exactly what is
missing and the layout that was expected; videos listed but absent are returned separately so the data module can
apply its ``on_bad_video`` policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vmp_lightning.errors import ConfigError, UserError


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video (or an interval of one: frames ``start_frame`` .. ``end_frame`` inclusive)."""

    path: str
    label: int
    video_id: str
    start_frame: int = 0
    end_frame: int | None = None


class DatasetLayoutError(UserError, FileNotFoundError):
    """The dataset root or an annotation file is missing or malformed; the message shows the expected layout."""


@dataclass
class Annotations:
    """Records per split, the class names, and what the annotation lists but the disk does not hold."""

    splits: dict[str, list[VideoRecord]]
    class_names: list[str]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.missing = sorted(set(self.missing))  # a list may serve several splits
        for split, records in self.splits.items():  # evaluation groups views by video_id: two videos must not share
            first: dict[str, VideoRecord] = {}
            for record in records:
                other = first.setdefault(record.video_id, record)
                if other is not record:
                    raise DatasetLayoutError(
                        f"{split}: two entries share the video_id {record.video_id!r}: {describe(other)} and "
                        f"{describe(record)}"
                    )


def describe(record: VideoRecord) -> str:
    interval = f" frames {record.start_frame}-{record.end_frame}" if record.end_frame is not None else ""
    return f"{record.path}{interval} (label {record.label})"


def require(paths: dict[str, Path], layout: str) -> None:
    """Raise one error listing every missing path, with the expected layout."""
    absent = [f"  {what}: {path}" for what, path in paths.items() if not Path(path).exists()]
    if absent:
        raise DatasetLayoutError("missing:\n" + "\n".join(absent) + f"\nexpected layout:\n{layout}")


def keep_existing(records: list[VideoRecord], missing: list[str]) -> list[VideoRecord]:
    """The records whose file exists; the paths of the others are appended to ``missing``."""
    kept = []
    for record in records:
        if Path(record.path).is_file():
            kept.append(record)
        else:
            missing.append(record.path)
    return kept


def hold_out_validation(
    train: list[VideoRecord], fraction: float, seed: int = 0
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """(train, validation): ``fraction`` of each class's training videos held out for validation, drawn with
    ``seed`` from the class's videos in video-id order (so the listing order does not matter), at least one per class
    that has two or more, never a class's last training video. The test list is never touched: model selection
    stays off the test data."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {fraction}")
    by_class: dict[int, list[VideoRecord]] = {}
    for record in sorted(train, key=lambda r: r.video_id):
        by_class.setdefault(record.label, []).append(record)
    held: set[str] = set()
    rng = np.random.default_rng(seed)
    for label in sorted(by_class):
        videos = by_class[label]
        count = min(max(round(fraction * len(videos)), 1), len(videos) - 1) if fraction > 0 else 0
        held.update(videos[i].video_id for i in rng.permutation(len(videos))[:count])
    return [r for r in train if r.video_id not in held], [r for r in train if r.video_id in held]
