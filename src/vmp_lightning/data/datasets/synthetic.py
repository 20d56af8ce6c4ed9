"""Synthetic motion videos: classes that differ only by how an object moves.

Each video shows a static cluttered background, a few static textured distractors and one textured object that
moves with the class's motion. The object's texture, the distractors and the background are drawn from the same
distributions for every class and the object wraps around the frame edges (toroidal motion), so every position is
equally likely in every class: no single frame tells the classes apart, only motion does. Per-frame sensor noise
makes frame differences noisy, which is what a learned attention threshold has to cope with.

Videos are written once as real H.264 mp4 files into a cache folder keyed by the generation settings, and read back
through the same decord path as real datasets.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from filelock import FileLock

from vmp_lightning.data.annotations import VideoRecord
from vmp_lightning.data.datamodule import SPLITS, VideoDataModule
from vmp_lightning.data.parallel import map_with_progress
from vmp_lightning.data.video_writer import write_video
from vmp_lightning.errors import ConfigError
from vmp_lightning.files import atomic_write

#: Motion name -> direction (dx, dy) per frame, scaled by the speed. "Oscillate" classes move back and forth.
MOTIONS: dict[str, tuple[float, float]] = {
    "right": (1, 0),
    "left": (-1, 0),
    "down": (0, 1),
    "up": (0, -1),
    "down_right": (0.7071, 0.7071),
    "up_left": (-0.7071, -0.7071),
    "down_left": (-0.7071, 0.7071),
    "up_right": (0.7071, -0.7071),
}
GENERATOR_VERSION = 3  # bump when the files change, so old caches are not reused (3: byte-identical encodes)


@dataclass(frozen=True)
class SyntheticMotionSpec:
    """Everything that decides the generated files (and so the cache folder's name)."""

    num_classes: int = 4
    videos_per_class: tuple[int, int, int] = (40, 10, 20)  # train, val, test
    video_size: int = 64
    video_frames: int = 24
    fps: int = 12
    speed: float = 2.0
    object_size: int = 16
    num_distractors: int = 4
    noise_std: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(MOTIONS):
            raise ConfigError(f"data.num_classes must be in [2, {len(MOTIONS)}], got {self.num_classes}")
        if self.video_size % 2 or self.video_size < 2 * self.object_size:
            raise ConfigError(
                f"data.video_size must be even and >= 2 x data.object_size, got {self.video_size}, {self.object_size}"
            )
        if len(self.videos_per_class) != 3 or min(self.videos_per_class) < 1:
            raise ConfigError(f"data.videos_per_class needs 3 counts >= 1 (train, val, test): {self.videos_per_class}")

    @property
    def class_names(self) -> list[str]:
        return list(MOTIONS)[: self.num_classes]

    def fingerprint(self) -> str:
        payload = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def _texture(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Blocky colour texture: ``cells x cells`` random colours, nearest-upsampled, plus fine noise."""
    coarse = rng.integers(0, 256, size=(cells, cells, 3)).astype(np.float32)
    rows = np.arange(height) * cells // height
    cols = np.arange(width) * cells // width
    return coarse[rows][:, cols] + rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)


def render_video(spec: SyntheticMotionSpec, label: int, rng: np.random.Generator) -> np.ndarray:
    """``video_frames x video_size x video_size x 3`` uint8 frames of one video of class ``label``."""
    size, obj = spec.video_size, spec.object_size
    frame = _texture(rng, size, size, cells=8)
    for _ in range(spec.num_distractors):  # static objects that look like the moving one
        y, x = rng.integers(0, size - obj, size=2)
        frame[y : y + obj, x : x + obj] = _texture(rng, obj, obj, cells=4)
    patch = _texture(rng, obj, obj, cells=4)
    dx, dy = MOTIONS[spec.class_names[label]]
    y0, x0 = rng.uniform(0, size, size=2)
    video = np.empty((spec.video_frames, size, size, 3), dtype=np.float32)
    for t in range(spec.video_frames):
        rows = (round(float(y0 + dy * spec.speed * t)) + np.arange(obj)) % size
        cols = (round(float(x0 + dx * spec.speed * t)) + np.arange(obj)) % size
        video[t] = frame
        video[t][np.ix_(rows, cols)] = patch
    video += rng.normal(0, spec.noise_std, size=video.shape).astype(np.float32)
    return np.clip(np.round(video), 0, 255).astype(np.uint8)


def generate(spec: SyntheticMotionSpec, root: str | Path, workers: int = 1) -> Path:
    """Write the dataset under ``root/<fingerprint>`` unless it is complete already; return that folder.

    Resumable: finished videos are kept, the manifest is written last, so a folder with a manifest is complete.
    Runs that start together on an empty cache take turns (a file lock): the first writes, the others find it done.
    ``workers`` processes encode at once, with a progress bar; each video's bytes depend on the seed alone.
    """
    folder = Path(root) / spec.fingerprint()
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".lock"):
        if not manifest.is_file():
            _write(spec, folder, manifest, workers)
    return folder


def _write(spec: SyntheticMotionSpec, folder: Path, manifest: Path, workers: int) -> None:
    rows, jobs = [], []
    for split_id, (split, per_class) in enumerate(zip(SPLITS, spec.videos_per_class, strict=True)):
        for label, name in enumerate(spec.class_names):
            for i in range(per_class):
                rel = f"{split}/{name}_{i:04d}.mp4"
                if not (folder / rel).is_file():
                    jobs.append((str(folder / rel), (spec.seed, split_id, label, i), label))
                rows.append({"split": split, "path": rel, "label": label, "video_id": f"{split}/{name}_{i:04d}"})
    map_with_progress(partial(_write_video, spec=spec), jobs, workers, "synthetic videos")
    (folder / "spec.json").write_text(json.dumps({**asdict(spec), "version": GENERATOR_VERSION}, indent=2))
    with atomic_write(manifest) as partial_manifest, partial_manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "path", "label", "video_id"])
        writer.writeheader()
        writer.writerows(rows)


def _write_video(job: tuple[str, tuple[int, ...], int], spec: SyntheticMotionSpec) -> None:
    path, seed, label = job
    write_video(path, render_video(spec, label, np.random.default_rng(list(seed))), spec.fps)


def default_cache_root() -> Path:
    """``$VMP_LIGHTNING_CACHE/synthetic``, else ``~/.cache/vmp-lightning/synthetic``."""
    base = os.environ.get("VMP_LIGHTNING_CACHE") or Path.home() / ".cache" / "vmp-lightning"
    return Path(base) / "synthetic"


class SyntheticMotionDataModule(VideoDataModule):
    """Synthetic motion videos, generated on first use (see the module docstring), in ``root`` (default:
    `default_cache_root`). The generation settings are `SyntheticMotionSpec`'s; every other option is the base
    data module's, with defaults sized for the small videos. Horizontal flips are off by default: they would
    turn "left" into "right"."""

    def __init__(
        self,
        num_classes: int = 4,
        videos_per_class: tuple[int, int, int] = (40, 10, 20),
        video_size: int = 64,
        video_frames: int = 24,
        speed: float = 2.0,
        object_size: int = 16,
        num_distractors: int = 4,
        noise_std: float = 3.0,
        seed: int = 0,
        root: str | None = None,
        stride: int = 2,
        crop_size: int = 56,
        short_side: tuple[int, int] = (64, 72),
        flip: bool = False,
        batch_size: int = 16,
        **kwargs,
    ) -> None:
        super().__init__(
            stride=stride, crop_size=crop_size, short_side=short_side, flip=flip, batch_size=batch_size, **kwargs
        )
        self.spec = SyntheticMotionSpec(
            num_classes=num_classes,
            videos_per_class=tuple(videos_per_class),
            video_size=video_size,
            video_frames=video_frames,
            speed=speed,
            object_size=object_size,
            num_distractors=num_distractors,
            noise_std=noise_std,
            seed=seed,
        )
        self.root = Path(root) if root else default_cache_root()

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    @property
    def folder(self) -> Path:
        return self.root / self.spec.fingerprint()

    def prepare_data(self) -> None:
        generate(self.spec, self.root, workers=max(1, self.num_workers))  # as many encoders as loader workers

    def load_records(self, split: str) -> list[VideoRecord]:
        manifest = self.folder / "manifest.csv"
        if not manifest.is_file():  # setup without prepare_data (plain Python use)
            generate(self.spec, self.root)
        with manifest.open(newline="") as handle:
            return [
                VideoRecord(str(self.folder / row["path"]), int(row["label"]), row["video_id"])
                for row in csv.DictReader(handle)
                if row["split"] == split
            ]
