"""The data module base: owns the frame count, the sampling and the normalisation that the model is told about."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader

from vmp_lightning.data.dataset import ClipDataset, OnBadVideo
from vmp_lightning.data.transforms import Normalizer, eval_transform, train_transform
from vmp_lightning.data.video import Backend, VideoRecord
from vmp_lightning.prompt import ChannelOrder

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class Normalization:
    """What the pipeline did to the pixels: ``x = (u - mean) / std`` per channel, channels in ``channel_order``."""

    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    channel_order: ChannelOrder = "rgb"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def as_dict(self) -> dict:
        """Plain lists and strings: what checkpoints and YAML files store."""
        return {"mean": list(self.mean), "std": list(self.std), "channel_order": self.channel_order}


# Saved in checkpoint hyper-parameters: allow it under torch.load(weights_only=True).
torch.serialization.add_safe_globals([Normalization])

SPLITS = ("train", "val", "test")


class VideoDataModule(L.LightningDataModule):
    """Base data module: subclasses provide `class_names` and `load_records(split)`.

    Args:
        num_frames: T, the number of frames the backbone sees.
        extra_frames: added on top when a layer in front of the backbone consumes frames (1 for the motion
            prompt); the CLI links it from ``model.vmp``, so turning VMPs on is one switch.
        stride: gap between sampled frames, in frames at ``target_fps`` (in source frames when it is None).
        target_fps: frame rate the stride refers to (the reference recipe: stride 32 at 30 fps).
        crop_size, short_side: training resizes the short side to a random value in ``short_side`` and crops
            ``crop_size`` at random; evaluation resizes it to ``short_side[0]`` and crops.
        flip: random horizontal flips in training.
        test_views, test_crops: temporal views x spatial crops (1 or 3) per test video; validation uses 1 x 1.
        backend: video decoder, ``decord`` | ``pyav`` | ``torchcodec``.
        on_bad_video: ``raise`` stops at an unreadable, empty or too-short video; ``skip`` reports it once and
            lets the next readable video of the split stand in (counted per epoch as ``data/bad_videos``).
    """

    def __init__(
        self,
        num_frames: int = 8,
        extra_frames: int = 0,
        stride: int = 8,
        target_fps: float | None = None,
        crop_size: int = 224,
        short_side: tuple[int, int] = (256, 320),
        flip: bool = True,
        mean: tuple[float, float, float] = KINETICS_MEAN,
        std: tuple[float, float, float] = KINETICS_STD,
        test_views: int = 1,
        test_crops: int = 1,
        backend: Backend = "decord",
        on_bad_video: OnBadVideo = "raise",
        batch_size: int = 8,
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        if num_frames < 1 or extra_frames < 0:
            raise ValueError(f"need num_frames >= 1 and extra_frames >= 0, got {num_frames} and {extra_frames}")
        if test_views < 1 or test_crops not in (1, 3):
            raise ValueError(f"need test_views >= 1 and test_crops in (1, 3), got {test_views} and {test_crops}")
        self.num_frames, self.extra_frames, self.stride, self.target_fps = num_frames, extra_frames, stride, target_fps
        self.crop_size, self.short_side, self.flip = crop_size, tuple(short_side), flip
        self.normalization = Normalization(tuple(mean), tuple(std), "rgb")  # every backend decodes to RGB
        self.normalize = Normalizer(mean, std)
        self.test_views, self.test_crops = test_views, test_crops
        self.backend, self.on_bad_video = backend, on_bad_video
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

    @property
    def frames_per_clip(self) -> int:
        """Frames decoded per clip: T, plus what the prompt layer consumes."""
        return self.num_frames + self.extra_frames

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.records:
                self.records[split] = self.load_records(split)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Loaders deliver uint8 clips (a quarter of the bytes); they are normalised here, on the device."""
        if isinstance(batch, dict) and batch.get("video") is not None and batch["video"].dtype == torch.uint8:
            batch["video"] = self.normalize(batch["video"])
        return batch

    def dataset(self, split: str) -> ClipDataset:
        """Items hold uint8 ``C x T x H x W`` clips; `normalize` (applied after transfer) makes them floats."""
        train = split == "train"
        views, crops = (self.test_views, self.test_crops) if split == "test" else (1, 1)
        if train:
            transform = train_transform(self.crop_size, self.short_side, self.flip)
        else:
            transform = eval_transform(self.crop_size, self.short_side[0], crops)
        return ClipDataset(
            self.records[split],
            self.frames_per_clip,
            self.stride,
            transform,
            train=train,
            num_views=views,
            num_crops=crops,
            target_fps=self.target_fps,
            backend=self.backend,
            on_bad_video=self.on_bad_video,
        )

    def _loader(self, split: str) -> DataLoader:
        dataset = self.dataset(split)
        train = split == "train"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
