"""Data path: records, clip sampling, decoding, transforms, data modules, synthetic motion videos."""

from vmp_lightning.data.datamodule import KINETICS_MEAN, KINETICS_STD, Normalization, VideoDataModule
from vmp_lightning.data.dataset import ClipDataset
from vmp_lightning.data.sampling import clip_span, sample_clip_indices, view_clip_indices
from vmp_lightning.data.synthetic import (
    SyntheticMotionDataModule,
    SyntheticMotionSpec,
    generate,
    render_video,
)
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
    "KINETICS_MEAN",
    "KINETICS_STD",
    "ClipDataset",
    "Normalization",
    "SyntheticMotionDataModule",
    "SyntheticMotionSpec",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoReader",
    "VideoRecord",
    "VideoWriter",
    "available_backends",
    "clip_span",
    "eval_transform",
    "generate",
    "open_video",
    "read_frames",
    "render_video",
    "sample_clip_indices",
    "train_transform",
    "view_clip_indices",
    "write_video",
]
