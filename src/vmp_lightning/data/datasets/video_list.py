"""Any dataset given as list files, one per split (``"<path> <label> [<start> <end>]"`` lines, Kinetics style)."""

from __future__ import annotations

from pathlib import Path

from vmp_lightning.data.annotations import Annotations, DatasetLayoutError, VideoRecord, keep_existing, require
from vmp_lightning.data.datamodule import AnnotatedDataModule

LIST_LAYOUT = """  one line per video: "<path> <label> [<start frame> <end frame>]", space- or comma-separated,
  an optional header line "path,label[,start,end]"; label an integer or a class name;
  paths relative to `root` unless absolute"""


def read_video_list(path: Path, root: Path) -> list[tuple[str, str, str, int, int | None]]:
    """Rows (path, path as listed, label text, start, end) of a list file."""
    rows = []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        number = data[: error.start].count(b"\n") + 1
        raise DatasetLayoutError(
            f"{path} line {number}: not UTF-8 text ({error.reason}): save the list as UTF-8"
        ) from None
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
        rows.append((video, parts[0], parts[1], start, end))
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
    labels = {label for split_rows in rows.values() for _, _, label, _, _ in split_rows}
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
        for video, listed, label, start, end in split_rows:
            if label in index:
                k = index[label]
            elif label.isdigit() and int(label) < len(names):
                k = int(label)
            else:
                raise DatasetLayoutError(f"{lists[split]}: unknown label {label!r} for {video} (classes: {len(names)})")
            video_id = f"{listed}#{start}-{end}" if end is not None else listed  # the path as listed: unique
            records.append(VideoRecord(video, k, video_id, start, end))
        splits[split] = keep_existing(records, missing)
    return Annotations(splits, names, missing)


class VideoListDataModule(AnnotatedDataModule):
    """Any dataset given as list files (``"<path> <label> [<start> <end>]"`` lines, Kinetics style).

    Without a ``test_list`` it tests on the validation list, which also selects the checkpoint: it says so, and the
    run's ``metrics.json`` records ``test_split: val``. A test list that shares a video with the validation list is
    an error naming both files and the video, unless ``test_may_share_val`` opts in.
    """

    def __init__(
        self,
        train_list: str,
        val_list: str,
        test_list: str | None = None,
        root: str = "",
        classes: str | None = None,
        test_may_share_val: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.lists = {"train": train_list, "val": val_list, "test": test_list or val_list}
        self.root, self.classes, self.test_may_share_val = root, classes, test_may_share_val
        self.test_split = "test" if test_list else "val"

    def read_annotations(self) -> Annotations:
        annotations = read_video_lists(self.lists, self.root, self.classes)
        if self.test_split == "val":
            annotations.notes.append(
                f"no test_list: testing on the validation list {self.lists['val']}, which also selects the checkpoint"
            )
        elif not self.test_may_share_val:
            validation = {r.video_id for r in annotations.splits["val"]}
            shared = next((r.video_id for r in annotations.splits["test"] if r.video_id in validation), None)
            if shared is not None:
                raise DatasetLayoutError(
                    f"the test list {self.lists['test']} and the validation list {self.lists['val']} share videos, "
                    f"first {shared!r}: the checkpoint would be selected on test data (set "
                    "data.init_args.test_may_share_val true to allow it)"
                )
        return annotations
