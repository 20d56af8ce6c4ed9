"""Cost of the motion prompt layer in a training step, measured side by side in one run.

Compares, on the CPU threads available (forward + backward, batch 8, 224 x 224):
  - `MotionPrompt` (ours) on 9 frames,
  - the same layer written the naive way (de-normalise, grayscale by einsum, map repeated over the channels,
    V always computed as the reference code does),
  - one training step of an X3D-S backbone on 8 frames (the cost the layer is added to).
Time is the median of several runs; memory is what autograd keeps for backward (exact, summed over distinct
tensor storages) and the increase of peak resident memory over one step after a warm-up, in a child process
(Linux: the peak is reset through /proc/self/clear_refs just before the step; includes temporaries and gradients).

    python benchmarks/prompt_cost.py [--repeats 5] [--out benchmarks/results/prompt_cost]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from measure import peak_rss_in_child, peak_rss_increase, saved_for_backward_bytes, time_step
from vmp_lightning.backbones import X3D
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import BT601_RGB, LearnableSigmoid, MotionPrompt

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
BATCH, FRAMES, SIZE, CLASSES = 8, 8, 224, 51


class NaiveMotionPrompt(nn.Module):
    """The straightforward transcription: what our layer is compared against."""

    def __init__(self) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.tensor(0.5))
        self.n = nn.Parameter(torch.tensor(0.1))
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1, 1))
        self.register_buffer("weights", torch.tensor(BT601_RGB))

    def forward(self, x: torch.Tensor):
        pixels = x * self.std + self.mean
        gray = torch.einsum("bcthw,c->bthw", pixels, self.weights)
        diff = gray[:, 1:] - gray[:, :-1]
        a = 5.0 / (0.45 * torch.tanh(self.m).abs() + 0.1)
        b = 0.6 * torch.tanh(self.n)
        attention = 1 / (1 + torch.exp(-a * (diff - b)))
        prompts = attention.unsqueeze(1).repeat(1, 3, 1, 1, 1) * x[:, :, 1:]
        variation = (attention[:, 1:] - attention[:, :-1]).pow(2).sum() / attention[:, 1:].numel()
        return prompts, variation


def make_case(name: str):
    """(module, input, step function) for one measured case."""
    torch.manual_seed(0)
    if name == "backbone":
        model = X3D(CLASSES, size="s")
        x = torch.randn(BATCH, 3, FRAMES, SIZE, SIZE)
        labels = torch.randint(0, CLASSES, (BATCH,))

        def step():
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), labels).backward()

        return model, x, step
    x = torch.randn(BATCH, 3, FRAMES + 1, SIZE, SIZE, requires_grad=True)  # grad flows on to a stem in real use
    if name == "ours":
        model = MotionPrompt(Normalization(MEAN, STD), pn=LearnableSigmoid(init_m=0.5, init_n=0.1))

        def step():
            model.zero_grad(set_to_none=True)
            x.grad = None
            prompts, _ = model(x)
            prompts.sum().backward()

    else:
        model = NaiveMotionPrompt()

        def step():
            model.zero_grad(set_to_none=True)
            x.grad = None
            prompts, variation = model(x)
            (prompts.sum() + 0.0 * variation).backward()

    return model, x, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/prompt_cost")
    parser.add_argument("--peak-rss-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss_of:
        _, _, step = make_case(args.peak_rss_of)
        step()
        print(peak_rss_increase(step))
        return
    results = {}
    for name in ("ours", "naive", "backbone"):
        _, _, step = make_case(name)
        repeats = args.repeats if name != "backbone" else max(2, args.repeats // 2)
        results[name] = {
            "seconds": time_step(step, repeats),
            "saved_bytes": saved_for_backward_bytes(step),
            "peak_rss_increase_bytes": peak_rss_in_child(__file__, name),
        }
        print(name, results[name], flush=True)
    ours, naive, backbone = results["ours"], results["naive"], results["backbone"]
    summary = {
        "ours / backbone step time (%)": 100 * ours["seconds"] / backbone["seconds"],
        "ours / backbone saved-for-backward memory (%)": 100 * ours["saved_bytes"] / backbone["saved_bytes"],
        "naive / ours time": naive["seconds"] / ours["seconds"],
        "naive / ours saved-for-backward memory": naive["saved_bytes"] / ours["saved_bytes"],
        "naive / ours peak memory increase": naive["peak_rss_increase_bytes"] / ours["peak_rss_increase_bytes"],
    }
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "input": f"{BATCH}x3x{FRAMES + 1}x{SIZE}x{SIZE} (prompt) / {BATCH}x3x{FRAMES}x{SIZE}x{SIZE} (X3D-S)",
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "results": results, "summary": summary}, indent=2)
    )
    lines = [
        f"Prompt layer cost, fp32 forward+backward, {machine['input']}, {machine['threads']} CPU threads, "
        f"torch {machine['torch']}, {machine['date']}",
        "",
        "| case | time (s) | saved for backward (MiB) | peak RSS increase (MiB) |",
        "|---|---|---|---|",
    ]
    labels = {"ours": "MotionPrompt (ours)", "naive": "naive prompt layer", "backbone": "X3D-S training step"}
    for name, row in results.items():
        lines.append(
            f"| {labels[name]} | {row['seconds']:.3f} | {row['saved_bytes'] / 2**20:.0f} | "
            f"{row['peak_rss_increase_bytes'] / 2**20:.0f} |"
        )
    lines += ["", *(f"- {key}: {value:.2f}" for key, value in summary.items())]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
