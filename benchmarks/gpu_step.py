"""Training-step time and peak GPU memory of the paper's backbones with and without VMPs, side by side on one GPU.

SlowFast R50 8x8 (32 fast frames at 224, each VMP placement), X3D-S (13 frames at 160) and TimeSformer-B/16
(8 frames at 224); batch 8, bf16 autocast, SGD step; variants timed round-robin (each step ends in a synchronise),
peak memory from ``torch.cuda.max_memory_allocated`` per variant. Goal: VMP step <= 1.03x the backbone's time,
<= 1.05x its memory. Writes ``benchmarks/results/gpu_step.{json,md}`` with the card's name.

    python benchmarks/gpu_step.py [--repeats 20] [--only slowfast,x3d,timesformer]
    python benchmarks/gpu_step.py --smoke      # tiny sizes on whatever device there is: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from measure import time_steps_interleaved
from vmp_lightning.backbones import X3D, SlowFast, TimeSformer
from vmp_lightning.model import PromptedModel

CLASSES = 51
CASES = {  # name -> (backbone factory, frames, crop, VMP variants)
    "slowfast": (lambda k: SlowFast(k), 32, 224, {"slow": ["slow"], "fast": ["fast"], "both": ["slow", "fast"]}),
    "x3d": (lambda k: X3D(k, size="s"), 13, 160, {"input": None}),
    "timesformer": (lambda k: TimeSformer(k), 8, 224, {"input": None}),
}
SMOKE = {  # the same variants at sizes a CPU runs in seconds
    "slowfast": (lambda k: SlowFast(k, width=8), 8, 32, CASES["slowfast"][3]),
    "x3d": (lambda k: X3D(k, size="s", width_factor=1.0, depth_factor=0.5, head_dim=32), 4, 32, {"input": None}),
    "timesformer": (
        lambda k: TimeSformer(k, num_frames=4, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4),
        4,
        32,
        {"input": None},
    ),
}


def make_step(case: tuple, variant: str, batch: int, device: torch.device):
    factory, frames, crop, variants = case
    torch.manual_seed(0)
    vmp = variant != "none"
    model = PromptedModel(factory(CLASSES), CLASSES, frames, vmp=vmp, vmp_sites=variants.get(variant)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    clip = torch.randn(batch, 3, frames + int(vmp), crop, crop, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits, _ = model(clip)
        nn.functional.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def peak_memory(step, device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    return torch.cuda.max_memory_allocated()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/gpu_step")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = SMOKE if args.smoke else CASES
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    rows = []
    for name in args.only.split(","):
        steps = {v: make_step(cases[name], v, args.batch, device) for v in ["none", *cases[name][3]]}
        memory = {variant: peak_memory(step, device) for variant, step in steps.items()}
        seconds = time_steps_interleaved(steps, args.repeats)
        for variant in cases[name][3]:
            rows.append(
                {
                    "backbone": name,
                    "vmp": variant,
                    "baseline_ms": 1000 * seconds["none"],
                    "vmp_ms": 1000 * seconds[variant],
                    "time_ratio": seconds[variant] / seconds["none"],
                    "baseline_peak_mib": memory["none"] / 2**20,
                    "vmp_peak_mib": memory[variant] / 2**20,
                    "memory_ratio": memory[variant] / memory["none"] if memory["none"] else None,
                }
            )
            print(rows[-1], flush=True)
        del steps
    machine = {"device": card, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke}
    out = Path(args.out + ("_smoke" if args.smoke else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    lines = [
        f"Training step with and without VMPs on {card}, batch {args.batch}, bf16 autocast, torch {machine['torch']}, "
        f"{machine['date']}" + (" (smoke sizes)" if args.smoke else ""),
        "",
        "| backbone | VMPs on | step (ms) | with VMPs (ms) | time ratio | peak (MiB) | with VMPs (MiB) "
        "| memory ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['memory_ratio']:.3f}" if r["memory_ratio"] else "n/a"
        lines.append(
            f"| {r['backbone']} | {r['vmp']} | {r['baseline_ms']:.1f} | {r['vmp_ms']:.1f} | {r['time_ratio']:.3f} | "
            f"{r['baseline_peak_mib']:.0f} | {r['vmp_peak_mib']:.0f} | {ratio} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
