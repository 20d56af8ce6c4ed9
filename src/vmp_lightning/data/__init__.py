"""Data path: records, clip sampling, decoding, transforms, data modules (one file per dataset in `datasets/`)."""

from vmp_lightning.data.annotations import Annotations, DatasetLayoutError
from vmp_lightning.data.clip_dataset import ClipDataset
from vmp_lightning.data.datamodule import AnnotatedDataModule, VideoDataModule
from vmp_lightning.data.datasets import (
    FineGymDataModule,
    HMDB51DataModule,
    MPIICooking2DataModule,
    SyntheticMotionDataModule,
    VideoListDataModule,
)
from vmp_lightning.data.datasets.finegym import parse_subaction_id, read_finegym
from vmp_lightning.data.datasets.hmdb51 import read_hmdb51
from vmp_lightning.data.datasets.mpii_cooking2 import read_mpii_cooking2
from vmp_lightning.data.datasets.synthetic import SyntheticMotionSpec, generate, render_video
from vmp_lightning.data.datasets.video_list import read_video_lists
from vmp_lightning.data.sampling import clip_span, eval_clip_indices, sample_clip_indices
from vmp_lightning.data.transforms import eval_transform, train_transform
from vmp_lightning.data.video import (
    VideoDecodeError,
    VideoReader,
    VideoRecord,
    VideoWriter,
    available_backends,
    open_video,
    read_frames,
    write_video,
)

__all__ = [
    "AnnotatedDataModule",
    "Annotations",
    "ClipDataset",
    "DatasetLayoutError",
    "FineGymDataModule",
    "HMDB51DataModule",
    "MPIICooking2DataModule",
    "SyntheticMotionDataModule",
    "SyntheticMotionSpec",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoListDataModule",
    "VideoReader",
    "VideoRecord",
    "VideoWriter",
    "available_backends",
    "clip_span",
    "eval_clip_indices",
    "eval_transform",
    "generate",
    "open_video",
    "parse_subaction_id",
    "read_finegym",
    "read_frames",
    "read_hmdb51",
    "read_mpii_cooking2",
    "read_video_lists",
    "render_video",
    "sample_clip_indices",
    "train_transform",
    "write_video",
]
