"""MPII Cooking 2 (Rohrbach et al., IJCV 2016): 67 activities from the annotated intervals of one camera's videos,
with the official train / validation / test sequences.

Layout, reader, preparation (`vmp-lightning prepare mpii-cooking2`) and data module, all of MPII Cooking 2 here.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from vmp_lightning.data.annotations import Annotations, DatasetLayoutError, VideoRecord, keep_existing, require
from vmp_lightning.data.datamodule import AnnotatedDataModule
from vmp_lightning.data.prepare import PrepareCommand, PrepareReport, check_prepared, cut_into_report, cut_queued

MPII_LAYOUT = """  <root>/attributesAnnotations_MPII-Cooking-2.mat  (MATLAB v7.3 / HDF5 with annos/fileName,
                                                    startFrame, endFrame, activity, attributeMap)
  <root>/experimentalSetup/sequencesTrainAttr.txt, sequencesVal.txt, sequencesTest.txt  (a sequence name per line)
  <root>/videos/<sequence>-<camera>.avi   (or the .mp4 that `vmp-lightning prepare mpii-cooking2` writes)"""
MPII_ANNOTATION = "attributesAnnotations_MPII-Cooking-2.mat"
MPII_SEQUENCES = {"train": "sequencesTrainAttr.txt", "val": "sequencesVal.txt", "test": "sequencesTest.txt"}


def _mat_strings(annos, key: str) -> list[str]:
    """A MATLAB cell array of strings in a v7.3 file: references to uint16 character arrays."""
    file = annos.file
    return [file[ref][()].astype("<u2").tobytes().decode("utf-16-le") for ref in annos[key][()].flatten()]


def read_mpii_cooking2(root: str | Path, camera: str = "cam-002", video_suffix: str | None = None) -> Annotations:
    """MPII Cooking 2 activity intervals as clips of the videos of ``camera`` (``video_suffix`` None: the
    re-encoded ``.mp4`` that `prepare_mpii_cooking2` wrote where there is one, else the official ``.avi``).

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
    by_file: dict[str, dict[tuple[int, int, int], None]] = {}  # ordered, one entry per (label, start, end)
    repeated = 0
    for name, file_name, start, end in zip(activity, file_names, starts, ends, strict=True):
        if name in label:
            intervals = by_file.setdefault(file_name, {})
            repeated += (label[name], start, end) in intervals
            intervals[(label[name], start, end)] = None
    missing: list[str] = []
    notes = []
    if repeated:
        notes.append(f"{repeated} annotations repeat another exactly (video, interval and activity): read once")
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
            path = root / "videos" / f"{file_name}{video_suffix or '.mp4'}"
            path = path if video_suffix or path.is_file() else path.with_suffix(".avi")
            for k, start, end in by_file[file_name]:  # the id names the interval and the activity: unique
                video_id = f"{file_name}_{start}-{end}_{class_names[k].replace(' ', '_').replace('/', '-')}"
                records.append(VideoRecord(str(path), k, video_id, start, end))
        splits[which] = keep_existing(records, missing)
    return Annotations(splits, class_names, missing, notes)


def prepare_mpii_cooking2(root: str | Path, out: str | Path, camera: str = "cam-002", **options) -> PrepareReport:
    """Re-encode the annotated videos of ``camera`` whole (short side and key-frame interval of ``options``) into
    ``out/videos/<sequence>-<camera>.mp4`` and copy the annotation and sequence lists: ``out`` is then an MPII
    Cooking 2 root whose frame numbers are the official ones, and much cheaper to decode (the originals are
    1624 x 1224)."""
    root, out = Path(root), Path(out)
    annotations = read_mpii_cooking2(root, camera, ".avi")
    report = PrepareReport(problems=[f"missing video {path}" for path in annotations.missing])
    sources = sorted({record.path for records in annotations.splits.values() for record in records})
    for source in map(Path, sources):
        cut_into_report(report, source, out / "videos" / f"{source.stem}.mp4", 0, None)
    cut_queued(report, **options)
    (out / "experimentalSetup").mkdir(parents=True, exist_ok=True)
    for name in MPII_SEQUENCES.values():
        shutil.copyfile(root / "experimentalSetup" / name, out / "experimentalSetup" / name)
    shutil.copyfile(root / MPII_ANNOTATION, out / MPII_ANNOTATION)
    return report


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, help="MPII Cooking 2 root (annotation .mat, experimentalSetup/, videos/)"
    )
    parser.add_argument(
        "--out", required=True, help="the prepared root: videos/ re-encoded, annotation, sequence lists"
    )
    parser.add_argument("--camera", default="cam-002")


PREPARE = PrepareCommand(
    "mpii-cooking2",
    "re-encode the annotated videos (smaller, short GOPs) into a root the data module reads",
    _prepare_arguments,
    lambda args, options: prepare_mpii_cooking2(args.root, args.out, args.camera, **options),
    lambda args: check_prepared("mpii_cooking2", args.out),
)


class MPIICooking2DataModule(AnnotatedDataModule):
    """MPII Cooking 2 activities (67 classes) from the annotated intervals of one camera's videos, with the
    official train / validation / test sequences (validation is used during training)."""

    def __init__(self, root: str, camera: str = "cam-002", video_suffix: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.camera, self.video_suffix = root, camera, video_suffix

    def read_annotations(self) -> Annotations:
        return read_mpii_cooking2(self.root, self.camera, self.video_suffix)
