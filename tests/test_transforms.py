"""Clip transforms (data/transforms.py): layout, sizes, the three test crops."""

from __future__ import annotations

import pytest
import torch

from vmp_lightning.data import (
    eval_transform,
    train_transform,
)


def test_transform_output_layout():
    frames = torch.randint(0, 256, (5, 40, 60, 3), dtype=torch.uint8)
    out = eval_transform(32, 36)(frames)
    assert out.shape == (3, 5, 32, 32)
    assert train_transform(32, (36, 40), flip=True)(frames).shape == (3, 5, 32, 32)
    with pytest.raises(ValueError, match="crop_size"):
        train_transform(64, (32, 40), flip=True)


def test_three_spatial_crops_cover_left_centre_right():
    frames = torch.zeros(2, 32, 96, 3, dtype=torch.uint8)
    frames[..., 0] = torch.arange(96, dtype=torch.uint8)  # red grows from left to right
    transform = eval_transform(32, 32, num_crops=3)
    reds = [transform(frames, crop)[0].float().mean().item() for crop in range(3)]
    assert reds[0] == pytest.approx(15.5, abs=0.6) and reds[1] == pytest.approx(47.5, abs=0.6)
    assert reds[2] == pytest.approx(79.5, abs=0.6)
