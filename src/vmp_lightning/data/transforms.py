"""Clip transforms on torchvision.transforms.v2 functionals: uint8 ``T x H x W x C`` frames -> uint8
``C x T x H x W`` crops; the model normalises a batch of them (`PromptedModel`, `Normalization.apply`).

Loader workers hand over uint8 crops, a quarter of the bytes of float ones, and the model normalises them once the
batch reached its device: measured in benchmarks/loader_throughput.py, this is what brings the loader to the raw
decoder's speed. The functionals are
used rather than a `v2.Compose`, whose overhead cost more than the resizing itself, and training cuts its window
from the source frames before resizing, so it resizes far fewer pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as F


def _channels_first(video: Tensor) -> Tensor:
    """``T x C x H x W`` -> contiguous ``C x T x H x W``."""
    return video.permute(1, 0, 2, 3).contiguous()


def train_transform(crop_size: int, short_side: tuple[int, int], flip: bool) -> Callable[[Tensor], Tensor]:
    """Short side resized to a random value in ``short_side``, a random ``crop_size`` square, an optional
    horizontal flip. The square is cut from the source frames and then resized, which is the same crop up to
    sub-pixel alignment and resizes far fewer pixels."""
    low, high = _check_sizes(crop_size, short_side)

    def apply(frames: Tensor) -> Tensor:
        video = frames.permute(0, 3, 1, 2)  # T x C x H x W, the layout the functionals expect
        height, width = video.shape[-2:]
        scale = int(torch.randint(low, high + 1, ())) / min(height, width)
        resized_h, resized_w = max(round(height * scale), crop_size), max(round(width * scale), crop_size)
        top = int(torch.randint(0, resized_h - crop_size + 1, ()))
        left = int(torch.randint(0, resized_w - crop_size + 1, ()))
        step_y, step_x = height / resized_h, width / resized_w
        y0, x0 = math.floor(top * step_y), math.floor(left * step_x)
        box_h = min(max(round(crop_size * step_y), 1), height - y0)
        box_w = min(max(round(crop_size * step_x), 1), width - x0)
        video = F.resize(F.crop(video, y0, x0, box_h, box_w), [crop_size, crop_size], antialias=True)
        if flip and torch.rand(()) < 0.5:
            video = video.flip(-1)
        return _channels_first(video)

    return apply


def eval_transform(crop_size: int, short_side: int, num_crops: int = 1) -> Callable[[Tensor, int], Tensor]:
    """Short side resized to ``short_side`` (the long side truncated), then spatial crop ``crop`` of ``num_crops``
    (1: centre; 3: start, centre and end of the long side): PySlowFast's ``uniform_crop`` arithmetic, which the
    authors' TimeSformer code keeps, the centre offset rounded up."""
    _check_sizes(crop_size, (short_side, short_side))
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")

    def apply(frames: Tensor, crop: int = 0) -> Tensor:
        video = F.resize(frames.permute(0, 3, 1, 2), [short_side], antialias=True)
        height, width = video.shape[-2:]
        top, left = math.ceil((height - crop_size) / 2), math.ceil((width - crop_size) / 2)
        if num_crops == 3 and crop != 1:
            if width >= height:
                left = 0 if crop == 0 else width - crop_size
            else:
                top = 0 if crop == 0 else height - crop_size
        return _channels_first(F.crop(video, top, left, crop_size, crop_size))

    return apply


def _check_sizes(crop_size: int, short_side: tuple[int, int]) -> tuple[int, int]:
    low, high = short_side
    if not crop_size <= low <= high:
        raise ValueError(f"need crop_size <= short_side[0] <= short_side[1], got {crop_size} and {tuple(short_side)}")
    return low, high
