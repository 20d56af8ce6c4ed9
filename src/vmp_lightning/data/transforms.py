"""Clip transforms (torchvision.transforms.v2): uint8 frames -> normalised float ``C x T x H x W``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2


def clip_transform(
    train: bool,
    crop_size: int,
    short_side: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    flip: bool,
) -> Callable[[Tensor], Tensor]:
    """Train: short side jittered in ``short_side``, random crop, optional flip. Eval: short side
    ``short_side[0]``, centre crop. Input ``T x H x W x C`` uint8, output ``C x T x H x W`` float32."""
    low, high = short_side
    if not crop_size <= low <= high:
        raise ValueError(f"need crop_size <= short_side[0] <= short_side[1], got {crop_size} and {short_side}")
    if train:
        steps = [
            v2.RandomShortestSize(min_size=list(range(low, high + 1)), antialias=True),
            v2.RandomCrop(crop_size),
        ]
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps = [v2.Resize(low, antialias=True), v2.CenterCrop(crop_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    pipeline = v2.Compose(steps)

    def apply(frames: Tensor) -> Tensor:
        video = tv_tensors.Video(frames.permute(0, 3, 1, 2))  # T x C x H x W, the layout v2 expects
        return pipeline(video).as_subclass(Tensor).permute(1, 0, 2, 3).contiguous()

    return apply
