"""MPII Cooking 2 (Rohrbach et al., IJCV 2016): 67 activities from the annotated intervals of one camera's videos,
with the official train / validation / test sequences.

Layout, reader, preparation (`vmp-lightning prepare mpii-cooking2`) and data module, all of MPII Cooking 2 here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vmp_lightning.data.annotations import Annotations, DatasetLayoutError, keep_existing, require
from vmp_lightning.data.datamodule import AnnotatedDataModule
from vmp_lightning.data.prepare import PrepareCommand, PrepareReport, cut_into_report, cut_queued
from vmp_lightning.data.video import VideoRecord

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
        splits[which] = keep_existing(records, missing)
    return Annotations(splits, class_names, missing, notes)


def prepare_mpii_cooking2(root: str | Path, out: str | Path, camera: str = "cam-002", **options) -> PrepareReport:
    """Cut every annotated activity of ``camera`` into ``out/clips/<split>/<class>/<video>_<start>.mp4`` and
    write ``out/{train,val,test}.txt`` and ``out/classes.txt`` for `VideoListDataModule`."""
    root, out = Path(root), Path(out)
    annotations = read_mpii_cooking2(root, camera)
    report = PrepareReport(problems=[f"missing video {path}" for path in annotations.missing])
    (out / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(annotations.class_names) + "\n")
    listed: dict[str, list[tuple[Path, int]]] = {split: [] for split in MPII_SEQUENCES}
    for split in MPII_SEQUENCES:
        for record in annotations.splits[split]:
            name = annotations.class_names[record.label].replace("/", "-").replace(" ", "_")
            relative = Path("clips") / split / name / f"{record.video_id}.mp4"
            cut_into_report(report, Path(record.path), out / relative, record.start_frame, record.end_frame)
            listed[split].append((relative, record.label))
    cut_queued(report, **options)
    for split, clips in listed.items():  # the clips that exist now
        lines = [f"{relative} {label}" for relative, label in clips if (out / relative).is_file()]
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return report


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, help="MPII Cooking 2 root (annotation .mat, experimentalSetup/, videos/)"
    )
    parser.add_argument("--out", required=True, help="folder for clips/, train.txt, val.txt, test.txt, classes.txt")
    parser.add_argument("--camera", default="cam-002")


PREPARE = PrepareCommand(
    "mpii-cooking2",
    "cut each annotated activity into its own clip",
    _prepare_arguments,
    lambda args, options: prepare_mpii_cooking2(args.root, args.out, args.camera, **options),
)


class MPIICooking2DataModule(AnnotatedDataModule):
    """MPII Cooking 2 activities (67 classes) from the annotated intervals of one camera's videos, with the
    official train / validation / test sequences (validation is used during training)."""

    def __init__(self, root: str, camera: str = "cam-002", video_suffix: str = ".avi", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.camera, self.video_suffix = root, camera, video_suffix

    def read_annotations(self) -> Annotations:
        return read_mpii_cooking2(self.root, self.camera, self.video_suffix)
