"""Clip transforms (torchvision.transforms.v2): uint8 frames -> normalised float ``C x T x H x W``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


def train_transform(
    crop_size: int, short_side: tuple[int, int], mean: Sequence[float], std: Sequence[float], flip: bool
) -> Callable[[Tensor], Tensor]:
    """Short side jittered in ``short_side``, random crop, optional horizontal flip, normalise.
    Input ``T x H x W x C`` uint8, output ``C x T x H x W`` float32."""
    low, high = _check_sizes(crop_size, short_side)
    steps = [v2.RandomShortestSize(min_size=list(range(low, high + 1)), antialias=True), v2.RandomCrop(crop_size)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    pipeline = v2.Compose(steps)

    def apply(frames: Tensor) -> Tensor:
        video = tv_tensors.Video(frames.permute(0, 3, 1, 2))  # T x C x H x W, the layout v2 expects
        return pipeline(video).as_subclass(Tensor).permute(1, 0, 2, 3).contiguous()

    return apply


def eval_transform(
    crop_size: int, short_side: int, mean: Sequence[float], std: Sequence[float], num_crops: int = 1
) -> Callable[[Tensor, int], Tensor]:
    """Short side resized to ``short_side``, then spatial crop ``crop`` of ``num_crops`` (1: centre; 3: start,
    centre and end of the long side, as in SlowFast / TimeSformer testing), normalise."""
    _check_sizes(crop_size, (short_side, short_side))
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    finish = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))])

    def apply(frames: Tensor, crop: int = 0) -> Tensor:
        video = F.resize(tv_tensors.Video(frames.permute(0, 3, 1, 2)), [short_side], antialias=True)
        height, width = video.shape[-2:]
        top, left = (height - crop_size) // 2, (width - crop_size) // 2
        if num_crops == 3:
            offset = [0, None, -1][crop]
            if offset is not None and width >= height:
                left = 0 if offset == 0 else width - crop_size
            elif offset is not None:
                top = 0 if offset == 0 else height - crop_size
        video = F.crop(video, top, left, crop_size, crop_size)
        return finish(video).as_subclass(Tensor).permute(1, 0, 2, 3).contiguous()

    return apply


def _check_sizes(crop_size: int, short_side: tuple[int, int]) -> tuple[int, int]:
    low, high = short_side
    if not crop_size <= low <= high:
        raise ValueError(f"need crop_size <= short_side[0] <= short_side[1], got {crop_size} and {tuple(short_side)}")
    return low, high
