"""What Lightning and our module cost per training step: the same model, data and optimiser trained by
`VideoClassifier` under a Lightning `Trainer` (as `vmp-lightning fit` runs it: bf16 autocast, the module's
callbacks, non-finite checks, metrics and logging) and by a plain PyTorch loop, steps/s side by side.

Clips come from memory (the loader is measured by loader_throughput.py); rounds alternate between the two so drifts
of a shared machine hit both alike. Goal: Lightning >= 0.97x the plain loop.

    python benchmarks/lightning_overhead.py [--steps 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from measure import machine_facts, write_results
from vmp_lightning.backbones import X3D, TinyVideoCNN
from vmp_lightning.module import VideoClassifier
from vmp_lightning.normalization import Normalization

CASES = {  # name -> (backbone factory, frames incl. the prompt's extra one, crop, batch)
    "TinyVideoCNN + VMPs, 9 x 56 x 56, batch 16": (lambda k: TinyVideoCNN(k, width=32), 9, 56, 16),
    "X3D-XS + VMPs, 5 x 112 x 112, batch 4": (lambda k: X3D(k, size="xs"), 5, 112, 4),
}
CLASSES = 8


class MemoryClips(Dataset):
    def __init__(self, count: int, frames: int, crop: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.videos = torch.randn(count, 3, frames, crop, crop, generator=generator)
        self.labels = torch.randint(0, CLASSES, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return {"video": self.videos[index], "label": self.labels[index], "video_id": str(index)}


def make_module(factory) -> VideoClassifier:
    torch.manual_seed(0)
    norm = {"mean": (0.45,) * 3, "std": (0.225,) * 3, "channel_order": "rgb"}
    return VideoClassifier(factory, CLASSES, vmp=True, normalization=Normalization.of(norm))


class StepTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self.start = warmup, [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self.start)


def lightning_steps(factory, loader: DataLoader, steps: int, warmup: int) -> float:
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision="bf16-mixed",
        max_steps=steps + warmup,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(make_module(factory), train_dataloaders=loader)
    return 1 / statistics.median(timer.times)


def plain_steps(factory, loader: DataLoader, steps: int, warmup: int) -> float:
    module = make_module(factory)
    model = module.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=1e-4)
    times = []
    for index, batch in enumerate(loader):
        if index >= steps + warmup:
            break
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(batch["video"])
        loss = F.cross_entropy(logits.float(), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return 1 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lightning_overhead"))
    args = parser.parse_args()
    results = {}
    for name, (factory, frames, crop, batch) in CASES.items():
        data = MemoryClips(batch * (args.steps + args.warmup), frames, crop)
        loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
        rates: dict[str, list[float]] = {"lightning": [], "plain": []}
        for _ in range(args.rounds):
            rates["lightning"].append(lightning_steps(factory, loader, args.steps, args.warmup))
            rates["plain"].append(plain_steps(factory, loader, args.steps, args.warmup))
        median = {k: statistics.median(v) for k, v in rates.items()}
        results[name] = {**median, "ratio": median["lightning"] / median["plain"]}
        print(name, results[name], flush=True)
    machine = machine_facts(lightning=L.__version__)
    lines = [
        f"Training steps/s, VideoClassifier under Lightning vs a plain PyTorch loop, bf16 autocast on "
        f"{machine['threads']} CPU threads, torch {machine['torch']}, lightning {machine['lightning']}, "
        f"median of {args.rounds} alternating rounds x {args.steps} steps, {machine['date']}",
        "",
        "| model and clip | Lightning steps/s | plain loop steps/s | Lightning / plain |",
        "|---|---|---|---|",
        *(f"| {n} | {r['lightning']:.2f} | {r['plain']:.2f} | {r['ratio']:.3f} |" for n, r in results.items()),
    ]
    write_results(args.out, {"machine": machine, "steps_per_s": results}, lines)


if __name__ == "__main__":
    main()
