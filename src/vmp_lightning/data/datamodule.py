"""The data module bases: `VideoDataModule` samples, decodes and crops uint8 clips of the length the model asks for
(``frames_per_clip``, linked from the model); `AnnotatedDataModule` adds records read from annotation files."""

from __future__ import annotations

import os
import signal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from vmp_lightning.data.annotations import Annotations, DatasetLayoutError, VideoRecord
from vmp_lightning.data.clip_dataset import ClipDataset, EpochShuffle, OnBadVideo
from vmp_lightning.data.sampling import ShortVideoRule
from vmp_lightning.data.transforms import eval_transform, train_transform
from vmp_lightning.data.video import Backend
from vmp_lightning.errors import ConfigError
from vmp_lightning.files import not_a_file

SPLITS = ("train", "val", "test")


def run_seed() -> int | None:
    """The run's seed (``seed_everything``), None when the run is not seeded."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return int(seed) if seed is not None else None


class VideoDataModule(L.LightningDataModule):
    """Base data module: subclasses provide `class_names` and `load_records(split)`.

    Items hold uint8 ``C x frames_per_clip x H x W`` clips; the model normalises them on its device (a quarter of
    the bytes through the loader).

    Args:
        frames_per_clip: frames decoded per clip. The model owns this number (its T, plus the frame the motion
            prompt consumes: `PromptedModel.frames_per_clip`); the CLI links it from ``model.num_frames`` and
            ``model.vmp``, so turning VMPs on is one switch.
        stride: gap between sampled frames, in frames at ``target_fps`` (in source frames when it is None).
        target_fps: frame rate the stride refers to (the reference recipe: stride 32 at 30 fps).
        crop_size, short_side: training resizes the short side to a random value in ``short_side`` and crops
            ``crop_size`` at random; evaluation resizes it to ``short_side[0]`` and crops.
        flip: random horizontal flips in training.
        test_clips, test_crops: temporal clips x spatial crops (1 or 3) per test video, each pair one *view*;
            validation uses 1 x 1.
        test_size: the test views' short side and crop (the full short side, as the originals test: 256 SlowFast,
            182 X3D-S, 224 TimeSformer; the backbone configs set it); None: as validation (``short_side[0]``,
            ``crop_size``).
        backend: video decoder, ``decord`` | ``pyav`` | ``torchcodec``.
        short_videos: how a video shorter than the clip's window is filled (``spread``, ``clamp`` as PySlowFast,
            ``vmps`` as the authors' TimeSformer; `vmp_lightning.data.sampling`); such a video is never dropped, so
            every model of a comparison is scored on the same videos. The backbone configs set their original's.
        on_bad_video: ``raise`` stops at an unreadable or empty video; ``skip`` reports it once and lets the next
            readable video of the split stand in (counted per epoch as ``data/bad_videos``).
    """

    def __init__(
        self,
        frames_per_clip: int = 8,
        stride: int = 8,
        target_fps: float | None = None,
        crop_size: int = 224,
        short_side: tuple[int, int] = (256, 320),
        flip: bool = True,
        test_clips: int = 1,
        test_crops: int = 1,
        test_size: int | None = None,
        backend: Backend = "decord",
        short_videos: ShortVideoRule = "spread",
        on_bad_video: OnBadVideo = "raise",
        batch_size: int = 8,
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        if frames_per_clip < 1 or stride < 1:
            raise ConfigError(f"data.frames_per_clip and data.stride must be >= 1, got {frames_per_clip} and {stride}")
        if not 0 < crop_size <= short_side[0] <= short_side[1]:
            raise ConfigError(
                f"need 0 < data.crop_size <= data.short_side[0] <= data.short_side[1], got {crop_size}, {short_side}"
            )
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(f"need data.batch_size >= 1 and data.num_workers >= 0, got {batch_size}, {num_workers}")
        if test_clips < 1 or test_crops not in (1, 3):
            raise ConfigError(
                f"need data.test_clips >= 1 and data.test_crops 1 or 3, got {test_clips} and {test_crops}"
            )
        self.frames_per_clip, self.stride, self.target_fps = frames_per_clip, stride, target_fps
        self.crop_size, self.short_side, self.flip = crop_size, tuple(short_side), flip
        self.test_clips, self.test_crops, self.test_size = test_clips, test_crops, test_size
        self.backend, self.on_bad_video, self.short_videos = backend, on_bad_video, short_videos
        self.batch_size, self.num_workers = batch_size, num_workers
        self.records: dict[str, list[VideoRecord]] = {}

    # --- what a concrete dataset provides -------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    def load_records(self, split: str) -> list[VideoRecord]:
        raise NotImplementedError

    # --- derived facts --------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.records:
                self.records[split] = self.load_records(split)

    def dataset(self, split: str) -> ClipDataset:
        """The split's clips: uint8 ``C x frames_per_clip x H x W`` with label, video id and view."""
        train = split == "train"
        clips, crops = (self.test_clips, self.test_crops) if split == "test" else (1, 1)
        if train:
            transform = train_transform(self.crop_size, self.short_side, self.flip)
        else:
            size = self.test_size if split == "test" and self.test_size else None
            transform = eval_transform(size or self.crop_size, size or self.short_side[0], crops)
        return ClipDataset(
            self.records[split],
            self.frames_per_clip,
            self.stride,
            transform,
            train=train,
            num_clips=clips,
            num_crops=crops,
            target_fps=self.target_fps,
            backend=self.backend,
            on_bad_video=self.on_bad_video,
            seed=run_seed() if train else None,
            short_videos=self.short_videos,
        )

    def _loader(self, split: str) -> DataLoader:
        dataset = self.dataset(split)
        train = split == "train"
        order = {"shuffle": train}
        if train and dataset.seed is not None:  # the order and each clip from (seed, epoch): exact resume
            epoch, batches_done = resume_position(self.trainer)
            processes, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
            sampler = EpochShuffle(dataset, dataset.seed, epoch, batches_done * self.batch_size, processes, rank)
            order = {"sampler": sampler, "generator": torch.Generator()}
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=leave_signals_to_the_main_process,
            **order,
        )

    def train_dataloader(self) -> DataLoader:
        """The training clips; a training split without a video is an error, not a fit of zero steps."""
        if not self.records.get("train"):
            raise DatasetLayoutError(
                f"{type(self).__name__}: the training split holds no video (missing files are left out with "
                "on_bad_video: skip); nothing to train on"
            )
        return self._loader("train")

    def val_dataloader(self) -> DataLoader | list:
        """No validation videos (``val_fraction: 0``): no validation (Lightning skips an empty list)."""
        return self._loader("val") if self.records.get("val") else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


def resume_position(trainer: L.Trainer | None) -> tuple[int, int]:
    """The epoch a fit's training loader starts in and the batches of it already trained: (0, 0) for a new fit;
    for a resumed one, read from Lightning's loop progress, which the checkpoint restores before the loaders are
    made (the loader's first batches are fetched before Lightning calls ``set_epoch``)."""
    if trainer is None:
        return 0, 0
    epochs = trainer.fit_loop.epoch_progress.current
    mid_epoch = epochs.started > epochs.processed
    return epochs.processed, trainer.fit_loop.epoch_loop.batch_progress.current.completed if mid_epoch else 0


def leave_signals_to_the_main_process(worker_id: int) -> None:
    """A loader worker ignores SIGTERM and SIGINT: SLURM signals every process of a job, a terminal's Ctrl-C the
    whole process group, and a worker that died first would turn the stop the main process saves into a crash.
    Workers still stop with their loader."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
                listing = "\n  ".join(f"{path}: {not_a_file(path)}" for path in annotations.missing[:20])
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
