"""HMDB-51 (Kuehne et al., ICCV 2011): 51 classes, three official splits (70 train / 30 test clips per class).

Layout, reader, preparation (`vmp-lightning prepare hmdb51`) and data module, all of HMDB-51 in one file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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

HMDB51_LAYOUT = """  <root>/videos/<class>/<video>.avi          (51 class folders: hmdb51_org.rar and the class .rar
                                               files in it, extracted; or under its name hmdb51_org/)
  <root>/splits/<class>_test_split<1|2|3>.txt (from test_train_splits.rar; lines "<video>.avi <0|1|2>",
                                               1 = train, 2 = test, 0 = unused; or testTrainMulti_7030_splits/)"""
#: The folders' names in the project's layout and as the official archives unpack.
HMDB51_FOLDERS = {"videos": ("videos", "hmdb51_org"), "splits": ("splits", "testTrainMulti_7030_splits")}
RAR_SIGNATURE = b"Rar!\x1a\x07"


def hmdb51_folder(root: Path, which: str) -> Path:
    """``root``'s videos or splits folder, under the project's name or the official one (the project's when
    neither exists, for the layout error)."""
    names = HMDB51_FOLDERS[which]
    return next((root / name for name in names if (root / name).is_dir()), root / names[0])


def _starts_with(path: Path, signature: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(signature)) == signature


def refuse_unextracted_archives(videos: Path) -> None:
    """The class archives inside hmdb51_org.rar left packed: name them and the command that unpacks them (no RAR
    reader installs from the package registries without a non-free unrar)."""
    packed = sorted(p.name for p in videos.glob("*.rar") if _starts_with(p, RAR_SIGNATURE))
    if packed:
        raise DatasetLayoutError(
            f"{videos} holds {len(packed)} unextracted RAR archives ({', '.join(packed[:3])}"
            f"{', ...' if len(packed) > 3 else ''}): unpack them in place with\n"
            f'  cd {videos} && for f in *.rar; do unrar x -o- "$f" && rm "$f"; done\n'
            f"(unrar, or 7z x, or bsdtar -xf), then run this again\nexpected layout:\n{HMDB51_LAYOUT}"
        )


HMDB51_CLIPS_PER_CLASS = {"train": 70, "test": 30}


def read_hmdb51(root: str | Path, split: int = 1, val_fraction: float = 0.1, val_seed: int = 0) -> Annotations:
    """HMDB-51 split ``split``: class index by sorted class name. HMDB-51 has no validation split: ``val_fraction``
    of each class's training videos is held out for it (`hold_out_validation`; 0: no validation), never the test
    list. Notes name the classes whose train / test counts differ from the official 70 / 30."""
    if split not in (1, 2, 3):
        raise ConfigError(f"data.split: HMDB-51 split must be 1, 2 or 3, got {split}")
    root = Path(root)
    videos, split_folder = hmdb51_folder(root, "videos"), hmdb51_folder(root, "splits")
    require({"dataset root": root, "videos folder": videos, "splits folder": split_folder}, HMDB51_LAYOUT)
    refuse_unextracted_archives(videos)
    files = sorted(split_folder.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DatasetLayoutError(f"no *_test_split{split}.txt in {split_folder}\nexpected layout:\n{HMDB51_LAYOUT}")
    class_names = sorted(f.name[: -len(f"_test_split{split}.txt")] for f in files)
    splits: dict[str, list[VideoRecord]] = {"train": [], "test": []}
    notes = []
    for label, name in enumerate(class_names):
        counts = {"train": 0, "test": 0}
        for number, line in enumerate((split_folder / f"{name}_test_split{split}.txt").read_text().splitlines(), 1):
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
            path = videos / name / parts[0]
            splits[which].append(VideoRecord(str(path), label, f"{name}/{Path(parts[0]).stem}"))
        if counts != HMDB51_CLIPS_PER_CLASS:
            notes.append(f"class {name}: {counts['train']} train / {counts['test']} test clips (official: 70 / 30)")
    if len(class_names) != 51:
        notes.append(f"{len(class_names)} classes found, HMDB-51 has 51")
    missing: list[str] = []
    splits = {which: keep_existing(records, missing) for which, records in splits.items()}
    splits["train"], splits["val"] = hold_out_validation(splits["train"], val_fraction, val_seed)
    return Annotations(splits, class_names, missing, notes)


def prepare_hmdb51(root: str | Path, out: str | Path, **options) -> PrepareReport:
    """Re-encode the videos of all three splits into ``out/videos/<class>/<name>.mp4`` and write split files
    that name them; ``out`` is then an HMDB-51 root for `HMDB51DataModule`."""
    root, out = Path(root), Path(out)
    report = PrepareReport(problems=[f"missing video {path}" for path in read_hmdb51(root, 1).missing])
    videos = sorted(hmdb51_folder(root, "videos").glob("*/*.avi"))
    for source in videos:
        cut_into_report(report, source, out / "videos" / source.parent.name / f"{source.stem}.mp4", 0, None)
    cut_queued(report, **options)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split_file in sorted(hmdb51_folder(root, "splits").glob("*_test_split*.txt")):
        lines = [line.replace(".avi", ".mp4") for line in split_file.read_text().splitlines()]
        (out / "splits" / split_file.name).write_text("\n".join(lines) + "\n")
    return report


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="HMDB-51 root with videos/ and splits/")
    parser.add_argument("--out", required=True, help="new HMDB-51 root")


PREPARE = PrepareCommand(
    "hmdb51",
    "re-encode all videos densely key-framed, rewrite the split files",
    _prepare_arguments,
    lambda args, options: prepare_hmdb51(args.root, args.out, **options),
    lambda args: check_prepared("hmdb51", args.out),
)


class HMDB51DataModule(AnnotatedDataModule):
    """HMDB-51 (51 classes), official split 1, 2 or 3, tested on the split's test list; validation on
    ``val_fraction`` of each class's training videos (drawn with ``val_seed``; 0: train on all, no validation, as
    the paper's runs)."""

    def __init__(self, root: str, split: int = 1, val_fraction: float = 0.1, val_seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.split, self.val_fraction, self.val_seed = root, split, val_fraction, val_seed

    def read_annotations(self) -> Annotations:
        return read_hmdb51(self.root, self.split, self.val_fraction, self.val_seed)
