"""Small synthetic videos in each dataset's published layout, for `make reproduce-table2 SMOKE=1`: the same
readers, split files and annotation formats as the real datasets, with classes that differ by motion only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vmp_lightning.data.datasets.mpii_cooking2 import MPII_ANNOTATION, MPII_SEQUENCES
from vmp_lightning.data.datasets.synthetic import SyntheticMotionSpec, render_video
from vmp_lightning.data.video_writer import write_video

SPEC = SyntheticMotionSpec(num_classes=3, video_size=32, video_frames=20, object_size=8, num_distractors=2)
FPS = 30
FINEGYM_LABELS = (0, 5, 9)  # Gym99 classes the smoke clips use (of 99)
YOUTUBE = "smoke_00001"


def _video(label: int, seed: tuple[int, ...]) -> np.ndarray:
    return render_video(SPEC, label, np.random.default_rng(list(seed)))


def write_hmdb51(root: Path, per_class: int = 4) -> Path:
    """``videos/<class>/<class>_<i>.avi`` and ``splits/<class>_test_split{1,2,3}.txt`` (1 train, 2 test)."""
    for label, name in enumerate(SPEC.class_names):
        for i in range(per_class):
            write_video(root / "videos" / name / f"{name}_{i}.avi", _video(label, (1, label, i)), FPS, codec="mpeg4")
        for split in (1, 2, 3):
            lines = [f"{name}_{i}.avi {2 if (i + split) % per_class == 0 else 1}" for i in range(per_class)]
            (root / "splits").mkdir(parents=True, exist_ok=True)
            (root / "splits" / f"{name}_test_split{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_finegym(root: Path, train: int = 3, val: int = 2) -> Path:
    """Prepared FineGym: ``annotations/gym99_*`` lists and categories, ``subactions/<sub-action id>.mp4``."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "val": []}
    index = 0
    for label, gym_label in enumerate(FINEGYM_LABELS):
        for which, count in (("train", train), ("val", val)):
            for _ in range(count):
                clip_id = f"{YOUTUBE}_E_000001_000099_A_{index:04d}_{index + 1:04d}"
                write_video(root / "subactions" / f"{clip_id}.mp4", _video(label, (2, label, index)), FPS)
                lists[which].append(f"{clip_id} {gym_label}")
                index += 1
    (root / "annotations" / "gym99_train_element_v1.1.txt").write_text("\n".join(lists["train"]) + "\n")
    (root / "annotations" / "gym99_val_element.txt").write_text("\n".join(lists["val"]) + "\n")
    categories = [f"Clabel: {g}; set: 1; Glabel: {g}; (VT) {SPEC.class_names[k]}" for k, g in enumerate(FINEGYM_LABELS)]
    (root / "annotations" / "gym99_categories.txt").write_text("\n".join(categories) + "\n")
    return root


def write_mat73(path: Path, fields: dict[str, list]) -> None:
    """A MATLAB v7.3 file as MATLAB writes one: HDF5 with a 512-byte header, cell arrays of strings as object
    references to uint16 character arrays under #refs#, numbers as float64 column vectors."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        annos, refs = handle.create_group("annos"), handle.create_group("#refs#")
        for key, values in fields.items():
            if isinstance(values[0], str):
                references = []
                for i, text in enumerate(values):
                    chars = np.frombuffer(text.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
                    references.append(refs.create_dataset(f"{key}_{i}", data=chars).ref)
                annos.create_dataset(key, data=np.array(references, dtype=h5py.ref_dtype).reshape(-1, 1))
            else:
                annos.create_dataset(key, data=np.asarray(values, dtype=np.float64).reshape(-1, 1))
    with path.open("r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


def write_mpii_cooking2(root: Path, sequences: tuple[int, int, int] = (3, 1, 2)) -> Path:
    """Raw ``videos/<sequence>-cam-002.avi`` with one interval per class, the v7.3 attribute annotation and the
    ``experimentalSetup`` sequence lists (train, val, test)."""
    rows: list[tuple[str, int, int, str]] = []
    names = iter(f"s{10 + i:02d}-d{i:02d}" for i in range(sum(sequences)))
    (root / "experimentalSetup").mkdir(parents=True, exist_ok=True)
    for list_name, count in zip(MPII_SEQUENCES.values(), sequences, strict=True):
        listed = []
        for _ in range(count):
            sequence = next(names)
            listed.append(sequence)
            segments = [_video(label, (3, label, len(rows))) for label in range(SPEC.num_classes)]
            start = 0
            for label, segment in enumerate(segments):
                rows.append((f"{sequence}-cam-002", start, start + len(segment) - 1, SPEC.class_names[label]))
                start += len(segment)
            write_video(root / "videos" / f"{sequence}-cam-002.avi", np.concatenate(segments), FPS, codec="mpeg4")
        (root / "experimentalSetup" / list_name).write_text("\n".join(listed) + "\n")
    write_mat73(
        root / MPII_ANNOTATION,
        {
            "fileName": [r[0] for r in rows],
            "startFrame": [r[1] for r in rows],
            "endFrame": [r[2] for r in rows],
            "activity": [r[3] for r in rows],
            "attributeMap": [*SPEC.class_names, "knife"],
        },
    )
    return root


WRITERS = {"hmdb51": write_hmdb51, "finegym": write_finegym, "mpii_cooking2": write_mpii_cooking2}


def write_smoke_datasets(root: str | Path, layouts: set[str]) -> Path:
    """Write each named layout under ``root/<layout>`` once (a ``.complete`` marker makes it reusable)."""
    root = Path(root)
    for layout in sorted(layouts):
        if layout not in WRITERS:
            raise ValueError(f"no synthetic layout {layout!r}; known: {sorted(WRITERS)}")
        folder = root / layout
        if not (folder / ".complete").is_file():
            WRITERS[layout](folder)
            (folder / ".complete").write_text("")
    return root
