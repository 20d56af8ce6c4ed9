"""Data modules for the paper's datasets and for generic video lists (see `annotations` for the layouts)."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_warn

from vmp_lightning.data.annotations import (
    Annotations,
    DatasetLayoutError,
    read_finegym,
    read_hmdb51,
    read_mpii_cooking2,
    read_video_lists,
)
from vmp_lightning.data.datamodule import VideoDataModule
from vmp_lightning.data.video import VideoRecord


class AnnotatedDataModule(VideoDataModule):
    """A data module whose records come from an annotation reader, read once.

    Videos the annotation lists but the disk lacks are an error listing them with ``on_bad_video="raise"``;
    with ``"skip"`` they are dropped with one warning that counts and names them.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._annotations: Annotations | None = None

    def read_annotations(self) -> Annotations:
        raise NotImplementedError

    @property
    def annotations(self) -> Annotations:
        if self._annotations is None:
            annotations = self.read_annotations()
            for note in annotations.notes:
                rank_zero_warn(f"{type(self).__name__}: {note}")
            if annotations.missing:
                listing = "\n  ".join(annotations.missing[:20])
                more = f"\n  ... and {len(annotations.missing) - 20} more" if len(annotations.missing) > 20 else ""
                message = f"{len(annotations.missing)} videos listed in the annotation are missing:\n  {listing}{more}"
                if self.on_bad_video == "raise":
                    raise DatasetLayoutError(message + "\n(set on_bad_video: skip to train without them)")
                rank_zero_warn(f"{type(self).__name__}: {message}\nthey are left out (on_bad_video: skip)")
            self._annotations = annotations
        return self._annotations

    @property
    def class_names(self) -> list[str]:
        return self.annotations.class_names

    def load_records(self, split: str) -> list[VideoRecord]:
        return self.annotations.splits[split]


class HMDB51DataModule(AnnotatedDataModule):
    """HMDB-51 (51 classes), official split 1, 2 or 3; validation on the split's test list."""

    def __init__(self, root: str, split: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.split = root, split

    def read_annotations(self) -> Annotations:
        return read_hmdb51(self.root, self.split)


class FineGymDataModule(AnnotatedDataModule):
    """FineGym element-level classification on trimmed sub-action clips, ``gym99`` (default) or ``gym288``."""

    def __init__(self, root: str, subset: str = "gym99", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.subset = root, subset

    def read_annotations(self) -> Annotations:
        return read_finegym(self.root, self.subset)


class MPIICooking2DataModule(AnnotatedDataModule):
    """MPII Cooking 2 activities (67 classes) from the annotated intervals of one camera's videos, with the
    official train / validation / test sequences (validation is used during training)."""

    def __init__(self, root: str, camera: str = "cam-002", video_suffix: str = ".avi", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.camera, self.video_suffix = root, camera, video_suffix

    def read_annotations(self) -> Annotations:
        return read_mpii_cooking2(self.root, self.camera, self.video_suffix)


class VideoListDataModule(AnnotatedDataModule):
    """Any dataset given as list files (``"<path> <label> [<start> <end>]"`` lines, Kinetics style)."""

    def __init__(
        self,
        train_list: str,
        val_list: str,
        test_list: str | None = None,
        root: str = "",
        classes: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.lists = {"train": train_list, "val": val_list, "test": test_list or val_list}
        self.root, self.classes = root, classes

    def read_annotations(self) -> Annotations:
        return read_video_lists(self.lists, self.root, self.classes)
