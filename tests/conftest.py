"""Shared fixtures: a tiny synthetic dataset written once per session, W&B and hubs kept offline."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vmp_lightning.data import SyntheticMotionSpec, generate

#: Small enough to generate in about a second, big enough for 4 classes and 3 splits.
TINY_SPEC = dict(num_classes=4, videos_per_class=(6, 2, 3), size=32, frames=16, object_size=8, num_distractors=2)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """Cache folder holding the tiny synthetic dataset (generated once for the whole test session)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(SyntheticMotionSpec(**TINY_SPEC), root)
    return str(root)


def tiny_data_args(root: str) -> list[str]:
    """CLI flags that point the default data module at the tiny dataset."""
    return [
        f"--data.init_args.root={root}",
        f"--data.init_args.num_classes={TINY_SPEC['num_classes']}",
        f"--data.init_args.videos_per_class=[{','.join(map(str, TINY_SPEC['videos_per_class']))}]",
        f"--data.init_args.video_size={TINY_SPEC['size']}",
        f"--data.init_args.video_frames={TINY_SPEC['frames']}",
        f"--data.init_args.object_size={TINY_SPEC['object_size']}",
        f"--data.init_args.num_distractors={TINY_SPEC['num_distractors']}",
        "--data.init_args.crop_size=32",
        "--data.init_args.short_side=[32,36]",
        "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=0",
    ]


def ramp_video(path, frames: int = 24, height: int = 32, width: int = 64, fps: float = 10, step: int = 8):
    """Write a video whose frame ``t`` has brightness about ``8 + step * t`` (so sampled indices can be read back
    from the pixels) over a fixed texture; returns the path."""
    import numpy as np

    from vmp_lightning.data import write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(-6, 7, size=(height, width, 3))
    video = np.stack([np.clip(8 + step * t + texture, 0, 255) for t in range(frames)]).astype(np.uint8)
    write_video(path, video, fps=fps)
    return path


def brightness_index(clip, step: int = 8):
    """Frame indices read back from a ``T x H x W x C`` uint8 clip written by `ramp_video`."""
    return [round((float(frame.float().mean()) - 8) / step) for frame in clip]
