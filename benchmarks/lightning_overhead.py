"""What Lightning and our module cost per training step: the same model, data and optimiser trained by
`VideoClassifier` under a Lightning `Trainer` (as `vmp-lightning fit` runs it: bf16 autocast, the module's
callbacks, non-finite checks, metrics, and a logger writing every 5 steps as the default config does) and by a
plain PyTorch loop, steps/s side by side.

The two run interleaved, step by step, in one process: before each Lightning step a callback runs one step of the
plain loop (on its own copy of the model), so both are timed in the same moments and a shared machine's drifts
(seen here: 25 % between runs a minute apart) hit both alike. A Lightning step is timed from the callback's return
to its next call, so everything Lightning does per step counts, its bookkeeping after ``on_train_batch_end`` and
the next batch's fetch included; a plain step includes its own fetch. The ratio is the median of the paired ratios
(plain step time / the next Lightning step's time), steadier than a ratio of the two medians. Clips come from
memory (the loader is measured by loader_throughput.py). Goal: Lightning >= 0.97x the plain loop.

    python benchmarks/lightning_overhead.py [--steps 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset

from measure import machine_facts, write_results
from vmp_lightning.backbones import X3D, TinyVideoCNN
from vmp_lightning.classifier import VideoClassifier

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


def make_module(factory, loader: DataLoader) -> VideoClassifier:
    """The classifier for the loader's clips (T+1 frames: T for the backbone, one for the prompt)."""
    torch.manual_seed(0)
    return VideoClassifier(factory, CLASSES, num_frames=loader.dataset.videos.shape[2] - 1, vmp=True)


class PlainLoop:
    """The same model, optimiser and data in a plain PyTorch loop, one step per call."""

    def __init__(self, factory, loader: DataLoader) -> None:
        self.model = make_module(factory, loader).model.train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.003, weight_decay=1e-4)
        self.batches = iter(loader)

    def step(self) -> None:
        batch = next(self.batches)
        self.optimizer.zero_grad(set_to_none=True)  # before the forward pass, as Lightning does
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = self.model(batch["video"])
        loss = F.cross_entropy(logits.float(), batch["label"])
        loss.backward()
        self.optimizer.step()


class Interleave(L.Callback):
    """Runs one plain step before each Lightning step and times both (seconds per step)."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.times: dict[str, list[float]] = {"lightning": [], "plain": []}
        self.resumed: float | None = None  # when Lightning got the control back

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        start = time.perf_counter()
        if self.resumed is not None:
            self.times["lightning"].append(start - self.resumed)
        self.plain.step()
        self.resumed = time.perf_counter()
        self.times["plain"].append(self.resumed - start)


def interleaved_round(factory, loader: DataLoader, steps: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step of both loops over ``steps`` steps after ``warmup`` steps."""
    timer = Interleave(PlainLoop(factory, loader))
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            precision="bf16-mixed",
            max_steps=steps + warmup + 1,  # the last step's start ends the last timed Lightning step
            logger=CSVLogger(logs),
            log_every_n_steps=5,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=[timer],
        )
        trainer.fit(make_module(factory, loader), train_dataloaders=loader)
    return {name: times[warmup : warmup + steps] for name, times in timer.times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lightning_overhead"))
    args = parser.parse_args()
    results = {}
    for name, (factory, frames, crop, batch) in CASES.items():
        data = MemoryClips(batch * (args.steps + args.warmup + 1), frames, crop)
        loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
        times: dict[str, list[float]] = {"lightning": [], "plain": []}
        for _ in range(args.rounds):
            for loop, seconds in interleaved_round(factory, loader, args.steps, args.warmup).items():
                times[loop] += seconds
        rate = {loop: 1 / statistics.median(seconds) for loop, seconds in times.items()}
        paired = [plain / lightning for plain, lightning in zip(times["plain"], times["lightning"], strict=True)]
        results[name] = {**rate, "ratio": statistics.median(paired)}
        print(name, results[name], flush=True)
    machine = machine_facts(lightning=L.__version__)
    lines = [
        f"Training steps/s, VideoClassifier under Lightning vs a plain PyTorch loop, bf16 autocast on "
        f"{machine['threads']} CPU threads, torch {machine['torch']}, lightning {machine['lightning']}, "
        f"medians over {args.rounds} rounds x {args.steps} steps, the two loops interleaved step by step, "
        f"{machine['date']}",
        "",
        "| model and clip | Lightning steps/s | plain loop steps/s | Lightning / plain |",
        "|---|---|---|---|",
        *(f"| {n} | {r['lightning']:.2f} | {r['plain']:.2f} | {r['ratio']:.3f} |" for n, r in results.items()),
    ]
    write_results(args.out, {"machine": machine, "steps_per_s": results}, lines)


if __name__ == "__main__":
    main()
