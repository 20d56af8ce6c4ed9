"""Data path: records, clip sampling, decoding, transforms, data modules, synthetic motion videos."""

from vmp_lightning.data.annotations import (
    Annotations,
    DatasetLayoutError,
    parse_subaction_id,
    read_finegym,
    read_hmdb51,
    read_mpii_cooking2,
    read_video_lists,
)
from vmp_lightning.data.datamodule import KINETICS_MEAN, KINETICS_STD, Normalization, VideoDataModule
from vmp_lightning.data.dataset import ClipDataset
from vmp_lightning.data.datasets import (
    FineGymDataModule,
    HMDB51DataModule,
    MPIICooking2DataModule,
    VideoListDataModule,
)
from vmp_lightning.data.sampling import sample_clip_indices, view_clip_indices
from vmp_lightning.data.synthetic import (
    SyntheticMotionDataModule,
    SyntheticMotionSpec,
    generate,
    render_video,
)
from vmp_lightning.data.transforms import Normalizer, eval_transform, train_transform
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
    "KINETICS_MEAN",
    "KINETICS_STD",
    "Annotations",
    "ClipDataset",
    "DatasetLayoutError",
    "FineGymDataModule",
    "HMDB51DataModule",
    "MPIICooking2DataModule",
    "Normalization",
    "Normalizer",
    "SyntheticMotionDataModule",
    "SyntheticMotionSpec",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoListDataModule",
    "VideoReader",
    "VideoRecord",
    "VideoWriter",
    "available_backends",
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
    "view_clip_indices",
    "write_video",
]
