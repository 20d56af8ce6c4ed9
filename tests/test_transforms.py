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


@pytest.mark.parametrize(
    ("config", "size", "clips"),
    [("slowfast_r50.yaml", 256, 10), ("x3d_s.yaml", 182, 10), ("timesformer_base.yaml", 224, 1)],
)
@pytest.mark.parametrize(("height", "width"), [(240, 427), (427, 240)])
def test_the_test_views_are_the_originals_three_crops_of_the_full_short_side(config, size, clips, height, width):
    """Each backbone config tests as its original code base: the short side scaled to the test size (the long side
    floored, PySlowFast's ``random_short_side_scale_jitter``), three crops of that size at PySlowFast's
    ``uniform_crop`` offsets (start, ceil of the centre, end of the long side), on a random frame."""
    import math

    import yaml
    from torchvision.transforms.v2 import functional as F

    from helpers import REPO

    settings = yaml.safe_load((REPO / "configs" / "backbone" / config).read_text())["data"]["init_args"]
    assert (settings["test_size"], settings["test_crops"], settings["test_clips"]) == (size, 3, clips)
    frames = torch.randint(0, 256, (2, height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    resized = F.resize(frames.permute(0, 3, 1, 2), [size], antialias=True)
    long_side = math.floor(max(height, width) / min(height, width) * size)
    assert tuple(resized.shape[-2:]) == ((size, long_side) if width > height else (long_side, size))
    transform = eval_transform(size, size, num_crops=3)
    for crop in range(3):
        offset = [0, math.ceil((long_side - size) / 2), long_side - size][crop]  # uniform_crop, spatial_idx = crop
        top, left = (0, offset) if width > height else (offset, 0)
        expected = resized[..., top : top + size, left : left + size].permute(1, 0, 2, 3)
        assert torch.equal(transform(frames, crop), expected), crop
