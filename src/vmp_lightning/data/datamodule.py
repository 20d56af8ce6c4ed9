"""The data module base: owns the frame count, the sampling and the normalisation that the model is told about."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader

from vmp_lightning.data.dataset import ClipDataset
from vmp_lightning.data.transforms import clip_transform
from vmp_lightning.data.video import VideoRecord
from vmp_lightning.prompt import ChannelOrder

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class Normalization:
    """What the pipeline did to the pixels: ``x = (u - mean) / std`` per channel, channels in ``channel_order``."""

    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    channel_order: ChannelOrder = "rgb"


# Saved in checkpoint hyper-parameters: allow it under torch.load(weights_only=True).
torch.serialization.add_safe_globals([Normalization])

SPLITS = ("train", "val", "test")


class VideoDataModule(L.LightningDataModule):
    """Base data module: subclasses provide `load_records(split)` and `class_names`.

    ``num_frames`` is T, the number of frames the backbone sees. ``extra_frames`` is added on top when a layer in
    front of the backbone consumes frames (1 for the motion prompt); the CLI links it from ``model.vmp``, so
    turning VMPs on is one switch. ``stride`` is the gap between sampled frames, in source frames.
    """

    def __init__(
        self,
        num_frames: int = 8,
        extra_frames: int = 0,
        stride: int = 8,
        crop_size: int = 224,
        short_side: tuple[int, int] = (256, 320),
        flip: bool = True,
        mean: tuple[float, float, float] = KINETICS_MEAN,
        std: tuple[float, float, float] = KINETICS_STD,
        batch_size: int = 8,
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        if num_frames < 1 or extra_frames < 0:
            raise ValueError(f"need num_frames >= 1 and extra_frames >= 0, got {num_frames} and {extra_frames}")
        self.num_frames, self.extra_frames, self.stride = num_frames, extra_frames, stride
        self.crop_size, self.short_side, self.flip = crop_size, tuple(short_side), flip
        self.normalization = Normalization(tuple(mean), tuple(std), "rgb")  # decord decodes to RGB
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

    def dataset(self, split: str) -> ClipDataset:
        train = split == "train"
        transform = clip_transform(
            train, self.crop_size, self.short_side, self.normalization.mean, self.normalization.std, self.flip
        )
        return ClipDataset(self.records[split], self.frames_per_clip, self.stride, transform, random_window=train)

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
