"""Readers of the published annotation layouts: HMDB-51, FineGym, MPII Cooking 2 and generic video lists.

Each reader returns, per split, a list of `VideoRecord` and the class names (label = index in that list).
Missing roots or annotation files raise `DatasetLayoutError` naming exactly what is missing and the layout that
was expected; videos listed but absent are returned separately so the caller can apply its policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vmp_lightning.data.video import VideoRecord


class DatasetLayoutError(FileNotFoundError):
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


def require(paths: dict[str, Path], layout: str) -> None:
    """Raise one error listing every missing path, with the expected layout."""
    absent = [f"  {what}: {path}" for what, path in paths.items() if not Path(path).exists()]
    if absent:
        raise DatasetLayoutError("missing:\n" + "\n".join(absent) + f"\nexpected layout:\n{layout}")


def _split_existing(records: list[VideoRecord], missing: list[str]) -> list[VideoRecord]:
    """The records whose file exists; the paths of the others are appended to ``missing``."""
    kept = []
    for record in records:
        if Path(record.path).is_file():
            kept.append(record)
        else:
            missing.append(record.path)
    return kept


# --- HMDB-51 ---------------------------------------------------------------------------------------------------
HMDB51_LAYOUT = """  <root>/videos/<class>/<video>.avi          (51 class folders, from hmdb51_org.rar)
  <root>/splits/<class>_test_split<1|2|3>.txt (from test_train_splits.rar; lines "<video>.avi <0|1|2>",
                                               1 = train, 2 = test, 0 = unused)"""
HMDB51_CLIPS_PER_CLASS = {"train": 70, "test": 30}


def read_hmdb51(root: str | Path, split: int = 1) -> Annotations:
    """HMDB-51 split ``split``: class index by sorted class name; validation uses the test list (HMDB-51 has no
    validation split). Notes name the classes whose train / test counts differ from the official 70 / 30."""
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB-51 split must be 1, 2 or 3, got {split}")
    root = Path(root)
    require({"dataset root": root, "videos folder": root / "videos", "splits folder": root / "splits"}, HMDB51_LAYOUT)
    files = sorted((root / "splits").glob(f"*_test_split{split}.txt"))
    if not files:
        raise DatasetLayoutError(f"no *_test_split{split}.txt in {root / 'splits'}\nexpected layout:\n{HMDB51_LAYOUT}")
    class_names = sorted(f.name[: -len(f"_test_split{split}.txt")] for f in files)
    splits: dict[str, list[VideoRecord]] = {"train": [], "test": []}
    notes = []
    for label, name in enumerate(class_names):
        counts = {"train": 0, "test": 0}
        for number, line in enumerate((root / "splits" / f"{name}_test_split{split}.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetLayoutError(
                    f"{name}_test_split{split}.txt line {number}: expected '<video> <0|1|2>', got {line!r}"
                )
            if parts[1] == "0":
                continue
            which = "train" if parts[1] == "1" else "test"
            counts[which] += 1
            path = root / "videos" / name / parts[0]
            splits[which].append(VideoRecord(str(path), label, f"{name}/{Path(parts[0]).stem}"))
        if counts != HMDB51_CLIPS_PER_CLASS:
            notes.append(f"class {name}: {counts['train']} train / {counts['test']} test clips (official: 70 / 30)")
    if len(class_names) != 51:
        notes.append(f"{len(class_names)} classes found, HMDB-51 has 51")
    missing: list[str] = []
    splits = {which: _split_existing(records, missing) for which, records in splits.items()}
    splits["val"] = splits["test"]
    return Annotations(splits, class_names, missing, notes)


# --- FineGym -----------------------------------------------------------------------------------------------------
FINEGYM_LAYOUT = """  <root>/annotations/gym99_train_element_v1.1.txt, gym99_val_element.txt  ("<subaction id> <label>")
  <root>/annotations/gym288_train_element_v1.1.txt, gym288_val_element.txt  (for subset gym288)
  <root>/annotations/gym99_categories.txt | gym288_categories.txt          (optional: class names)
  <root>/subactions/<subaction id>.mp4   (cut by `vmp-lightning prepare finegym`)"""
FINEGYM_LISTS = {
    "gym99": ("gym99_train_element_v1.1.txt", "gym99_val_element.txt", 99),
    "gym288": ("gym288_train_element_v1.1.txt", "gym288_val_element.txt", 288),
}
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


def read_finegym(root: str | Path, subset: str = "gym99") -> Annotations:
    """FineGym element-level classification (Gym99 or Gym288) on trimmed sub-action clips; the official
    validation list serves as validation and test set (FineGym publishes no separate test labels)."""
    if subset not in FINEGYM_LISTS:
        raise ValueError(f"FineGym subset must be one of {sorted(FINEGYM_LISTS)}, got {subset!r}")
    root = Path(root)
    train_name, val_name, num_classes = FINEGYM_LISTS[subset]
    annotations = root / "annotations"
    require(
        {
            "dataset root": root,
            "train list": annotations / train_name,
            "val list": annotations / val_name,
            "sub-action clips": root / "subactions",
        },
        FINEGYM_LAYOUT,
    )
    categories = annotations / f"{subset}_categories.txt"
    names = read_finegym_categories(categories) if categories.is_file() else {}
    class_names = [names.get(k, f"class_{k:03d}") for k in range(num_classes)]
    missing: list[str] = []
    splits = {}
    for which, name in (("train", train_name), ("val", val_name)):
        records = []
        for subaction_id, label in read_label_list(annotations / name):
            if not 0 <= label < num_classes:
                raise DatasetLayoutError(
                    f"{annotations / name}: label {label} of {subaction_id} is outside 0..{num_classes - 1}"
                )
            parse_subaction_id(subaction_id)  # a malformed id is an error here, not a missing file later
            records.append(VideoRecord(str(root / "subactions" / f"{subaction_id}.mp4"), label, subaction_id))
        splits[which] = _split_existing(records, missing)
    splits["test"] = splits["val"]
    return Annotations(splits, class_names, missing)


# --- MPII Cooking 2 -------------------------------------------------------------------------------------------
MPII_LAYOUT = """  <root>/attributesAnnotations_MPII-Cooking-2.mat  (MATLAB v7.3 / HDF5 with annos/fileName,
                                                    startFrame, endFrame, activity, attributeMap)
  <root>/experimentalSetup/sequencesTrainAttr.txt, sequencesVal.txt, sequencesTest.txt  (a sequence name per line)
  <root>/videos/<sequence>-<camera>.avi"""
MPII_ANNOTATION = "attributesAnnotations_MPII-Cooking-2.mat"
MPII_SEQUENCES = {"train": "sequencesTrainAttr.txt", "val": "sequencesVal.txt", "test": "sequencesTest.txt"}


def _mat_strings(annos, key: str) -> list[str]:
    """A MATLAB cell array of strings in a v7.3 file: references to uint16 character arrays."""
    file = annos.file
    return [file[ref][()].astype("<u2").tobytes().decode("utf-16-le") for ref in annos[key][()].flatten()]


def read_mpii_cooking2(root: str | Path, camera: str = "cam-002", video_suffix: str = ".avi") -> Annotations:
    """MPII Cooking 2 activity intervals as clips of the raw videos of ``camera``.

    Classes are the activities that also appear in ``attributeMap`` (67), sorted by name, as in the paper's
    setting; frame numbers are used as given in the annotation (0-based, as the reference code reads them).
    """
    import h5py

    root = Path(root)
    require(
        {
            "dataset root": root,
            "annotation": root / MPII_ANNOTATION,
            **{f"{which} sequences": root / "experimentalSetup" / name for which, name in MPII_SEQUENCES.items()},
            "videos folder": root / "videos",
        },
        MPII_LAYOUT,
    )
    try:
        with h5py.File(root / MPII_ANNOTATION, "r") as handle:
            annos = handle["annos"]
            activity = _mat_strings(annos, "activity")
            attributes = set(_mat_strings(annos, "attributeMap"))
            file_names = _mat_strings(annos, "fileName")
            starts = [int(v) for v in annos["startFrame"][()].flatten()]
            ends = [int(v) for v in annos["endFrame"][()].flatten()]
    except (OSError, KeyError) as error:
        raise DatasetLayoutError(f"{root / MPII_ANNOTATION}: not a readable v7.3 annotation ({error})") from error
    if not len(activity) == len(file_names) == len(starts) == len(ends):
        raise DatasetLayoutError(f"{root / MPII_ANNOTATION}: annos fields have different lengths")
    class_names = sorted({a for a in activity if a in attributes})
    label = {name: k for k, name in enumerate(class_names)}
    by_file: dict[str, list[tuple[int, int, int]]] = {}
    for name, file_name, start, end in zip(activity, file_names, starts, ends, strict=True):
        if name in label:
            by_file.setdefault(file_name, []).append((label[name], start, end))
    missing: list[str] = []
    notes = []
    splits = {}
    for which, list_name in MPII_SEQUENCES.items():
        records = []
        for line in (root / "experimentalSetup" / list_name).read_text().splitlines():
            if not line.strip():
                continue
            file_name = f"{line.split()[0]}-{camera}"
            if file_name not in by_file:
                notes.append(f"{which}: sequence {file_name} has no annotated activity")
                continue
            path = root / "videos" / f"{file_name}{video_suffix}"
            for k, start, end in by_file[file_name]:
                records.append(VideoRecord(str(path), k, f"{file_name}_{start}", start, end))
        splits[which] = _split_existing(records, missing)
    return Annotations(splits, class_names, missing, notes)


# --- generic lists --------------------------------------------------------------------------------------------
LIST_LAYOUT = """  one line per video: "<path> <label> [<start frame> <end frame>]", space- or comma-separated,
  an optional header line "path,label[,start,end]"; label an integer or a class name;
  paths relative to `root` unless absolute"""


def read_video_list(path: Path, root: Path) -> list[tuple[str, str, int, int | None]]:
    """Rows (path, label text, start, end) of a list file."""
    rows = []
    text = path.read_text().splitlines()
    for number, line in enumerate(text, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in (line.split(",") if "," in line else line.split())]
        if number == 1 and parts[:2] == ["path", "label"]:
            continue
        if len(parts) not in (2, 4):
            raise DatasetLayoutError(f"{path} line {number}: expected 2 or 4 fields, got {line!r}\n{LIST_LAYOUT}")
        video = parts[0] if Path(parts[0]).is_absolute() else str(root / parts[0])
        start, end = (int(parts[2]), int(parts[3])) if len(parts) == 4 else (0, None)
        rows.append((video, parts[1], start, end))
    return rows


def read_video_lists(
    lists: dict[str, str | Path], root: str | Path = "", classes: str | Path | None = None
) -> Annotations:
    """Generic dataset from list files per split. Class names come from ``classes`` (one name per line, label =
    line number) or, without it, integer labels are used as they are and names sorted otherwise."""
    root = Path(root)
    require({f"{split} list": Path(p) for split, p in lists.items()}, LIST_LAYOUT)
    names = [n.strip() for n in Path(classes).read_text().splitlines() if n.strip()] if classes else None
    rows = {split: read_video_list(Path(p), root) for split, p in lists.items()}
    labels = {label for split_rows in rows.values() for _, label, _, _ in split_rows}
    if names is None:
        if all(label.isdigit() for label in labels):
            names = [f"class_{k}" for k in range(max(int(label) for label in labels) + 1)] if labels else []
        else:
            names = sorted(labels)
    index = {name: k for k, name in enumerate(names)}
    missing: list[str] = []
    splits = {}
    for split, split_rows in rows.items():
        records = []
        for video, label, start, end in split_rows:
            if label in index:
                k = index[label]
            elif label.isdigit() and int(label) < len(names):
                k = int(label)
            else:
                raise DatasetLayoutError(f"{lists[split]}: unknown label {label!r} for {video} (classes: {len(names)})")
            video_id = f"{Path(video).stem}_{start}" if end is not None else Path(video).stem
            records.append(VideoRecord(video, k, video_id, start, end))
        splits[split] = _split_existing(records, missing)
    return Annotations(splits, names, missing)
