"""Data path: records, clip sampling, decoding, transforms, data modules (one file per dataset in `datasets/`).

Names are imported on first use, so a command that only decodes or cuts videos (`prepare`, the smoke datasets)
does not load Lightning with the data modules.
"""

from vmp_lightning.lazy import lazy_exports

_WHERE = {
    **dict.fromkeys(["Annotations", "DatasetLayoutError", "VideoRecord"], "annotations"),
    "ClipDataset": "clip_dataset",
    **dict.fromkeys(["AnnotatedDataModule", "VideoDataModule"], "datamodule"),
    **dict.fromkeys(["FineGymDataModule", "parse_subaction_id", "read_finegym"], "datasets.finegym"),
    **dict.fromkeys(["HMDB51DataModule", "read_hmdb51"], "datasets.hmdb51"),
    **dict.fromkeys(["MPIICooking2DataModule", "read_mpii_cooking2"], "datasets.mpii_cooking2"),
    **dict.fromkeys(
        ["SyntheticMotionDataModule", "SyntheticMotionSpec", "generate", "render_video"], "datasets.synthetic"
    ),
    **dict.fromkeys(["VideoListDataModule", "read_video_lists"], "datasets.video_list"),
    **dict.fromkeys(["clip_span", "eval_clip_indices", "sample_clip_indices"], "sampling"),
    **dict.fromkeys(["eval_transform", "train_transform"], "transforms"),
    **dict.fromkeys(
        [
            "VideoDecodeError",
            "VideoReader",
            "available_backends",
            "open_video",
            "read_frames",
        ],
        "video",
    ),
    **dict.fromkeys(["VideoWriter", "write_video"], "video_writer"),
}
__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE)
