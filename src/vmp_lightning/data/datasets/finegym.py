"""FineGym (Shao et al., CVPR 2020): element-level classification (Gym99 or Gym288) on trimmed sub-action clips.

Layout, reader, preparation (`vmp-lightning prepare finegym`) and data module, all of FineGym in one file.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from vmp_lightning.data.annotations import (
    Annotations,
    DatasetLayoutError,
    VideoRecord,
    hold_out_validation,
    keep_existing,
    require,
)
from vmp_lightning.data.datamodule import AnnotatedDataModule
from vmp_lightning.data.prepare import PrepareCommand, PrepareReport, check_prepared, cut_into_report, cut_queued
from vmp_lightning.errors import ConfigError

FINEGYM_LAYOUT = """  <root>/annotations/gym99_train_element_v1.1.txt, gym99_val_element.txt  ("<subaction id> <label>";
                    or v1.0: gym99_train_element_v1.0.txt; or the lists flat in <root> as downloaded)
  <root>/annotations/gym288_train_element_v1.1.txt, gym288_val_element.txt  (for subset gym288)
  <root>/annotations/gym99_categories.txt | gym288_categories.txt          (optional: class names)
  <root>/subactions/<subaction id>.mp4   (cut by `vmp-lightning prepare finegym`)"""
FINEGYM_CLASSES = {"gym99": 99, "gym288": 288}
FINEGYM_VERSIONS = ("1.1", "1.0")  # of the training lists, the first found is read


def finegym_lists(root: Path, subset: str) -> tuple[Path, Path, list[str]]:
    """The training and validation lists of ``subset`` in ``root/annotations/`` or flat in ``root`` (as the site
    serves them), the v1.1 training list where there is one, else v1.0; and a note when both are there."""
    if subset not in FINEGYM_CLASSES:
        raise ConfigError(f"data.subset: FineGym subset must be one of {sorted(FINEGYM_CLASSES)}, got {subset!r}")
    for folder in (root / "annotations", root):
        trains = [folder / f"{subset}_train_element_v{version}.txt" for version in FINEGYM_VERSIONS]
        found, val = [t for t in trains if t.is_file()], folder / f"{subset}_val_element.txt"
        if found and val.is_file():
            notes = [f"{found[0].name} read, not {found[1].name}"] if len(found) > 1 else []
            return found[0], val, notes
    require({"dataset root": root}, FINEGYM_LAYOUT)
    raise DatasetLayoutError(
        f"no {subset}_train_element_v1.1.txt (or v1.0) with {subset}_val_element.txt in {root / 'annotations'} or "
        f"{root}\nexpected layout:\n{FINEGYM_LAYOUT}"
    )


SUBACTION_ID = re.compile(r"^(?P<video>.+)_E_(?P<e0>\d+)_(?P<e1>\d+)_A_(?P<a0>\d+)_(?P<a1>\d+)$")


def parse_subaction_id(subaction_id: str) -> tuple[str, str, str]:
    """``"<youtube id>_E_<start>_<end>_A_<start>_<end>"`` -> (youtube id, event key, action key)."""
    match = SUBACTION_ID.match(subaction_id)
    if match is None:
        raise ValueError(f"not a FineGym sub-action id: {subaction_id!r}")
    return (
        match["video"],
        f"E_{match['e0']}_{match['e1']}",
        f"A_{match['a0']}_{match['a1']}",
    )


def read_label_list(path: Path) -> list[tuple[str, int]]:
    """Lines ``"<id> <integer label>"``; blank lines ignored."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetLayoutError(f"{path} line {number}: expected '<id> <integer label>', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    return entries


def read_finegym_categories(path: Path) -> dict[int, str]:
    """``gym99_categories.txt`` lines ``"Clabel: 0; set: 1; Glabel: 1; (VT) name"`` -> {label: "(VT) name"}."""
    names = {}
    for line in path.read_text().splitlines():
        fields = line.split(";")
        if len(fields) >= 4 and fields[0].strip().lower().startswith("clabel"):
            names[int(fields[0].split(":")[1])] = ";".join(fields[3:]).strip()
    return names


def read_finegym(root: str | Path, subset: str = "gym99", val_fraction: float = 0.1, val_seed: int = 0) -> Annotations:
    """FineGym element-level classification (Gym99 or Gym288) on trimmed sub-action clips, tested on the official
    validation list (FineGym publishes no test labels; the paper reports it); validation on ``val_fraction`` of each
    class's training clips (`hold_out_validation`; 0: no validation), never the list it is tested on."""
    root = Path(root)
    train_list, val_list, notes = finegym_lists(root, subset)
    num_classes, annotations = FINEGYM_CLASSES[subset], train_list.parent
    require({"sub-action clips": root / "subactions"}, FINEGYM_LAYOUT)
    categories = annotations / f"{subset}_categories.txt"
    names = read_finegym_categories(categories) if categories.is_file() else {}
    class_names = [names.get(k, f"class_{k:03d}") for k in range(num_classes)]
    missing: list[str] = []
    splits = {}
    for which, label_list in (("train", train_list), ("test", val_list)):
        records = []
        for subaction_id, label in read_label_list(label_list):
            if not 0 <= label < num_classes:
                raise DatasetLayoutError(
                    f"{label_list}: label {label} of {subaction_id} is outside 0..{num_classes - 1}"
                )
            parse_subaction_id(subaction_id)  # a malformed id is an error here, not a missing file later
            records.append(VideoRecord(str(root / "subactions" / f"{subaction_id}.mp4"), label, subaction_id))
        splits[which] = keep_existing(records, missing)
    splits["train"], splits["val"] = hold_out_validation(splits["train"], val_fraction, val_seed)
    return Annotations(splits, class_names, missing, notes)


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
    require({"annotation JSON": Path(annotation), "videos folder": videos}, FINEGYM_LAYOUT)
    info = json.loads(Path(annotation).read_text())
    report = PrepareReport()
    ids = [i for label_list in finegym_lists(root, subset)[:2] for i, _ in read_label_list(label_list)]
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
        cut_into_report(report, source, root / "subactions" / f"{subaction_id}.mp4", start, end)
    return cut_queued(report, **options)


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotation", required=True, help="finegym_annotation_info_v1.1.json")
    parser.add_argument("--videos", required=True, help="folder of raw videos <youtube id>.mp4")
    parser.add_argument("--root", required=True, help="FineGym root with annotations/; clips go to root/subactions")
    parser.add_argument("--subset", default="gym99", choices=sorted(FINEGYM_CLASSES))


PREPARE = PrepareCommand(
    "finegym",
    "cut sub-action clips from the raw videos",
    _prepare_arguments,
    lambda args, options: prepare_finegym(args.annotation, args.videos, args.root, args.subset, **options),
    lambda args: check_prepared("finegym", args.root),
)


class FineGymDataModule(AnnotatedDataModule):
    """FineGym element-level classification on trimmed sub-action clips, ``gym99`` (default) or ``gym288``, tested
    on the official validation list; validation on ``val_fraction`` of each class's training clips (drawn with
    ``val_seed``; 0: train on all, no validation, as the paper's runs)."""

    def __init__(
        self, root: str, subset: str = "gym99", val_fraction: float = 0.1, val_seed: int = 0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.root, self.subset, self.val_fraction, self.val_seed = root, subset, val_fraction, val_seed

    def read_annotations(self) -> Annotations:
        return read_finegym(self.root, self.subset, self.val_fraction, self.val_seed)
