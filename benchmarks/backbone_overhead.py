"""What VMPs add to a training step of each paper backbone at the paper's input size, measured side by side.

For SlowFast R50 8x8 (32 fast frames, each VMP placement), X3D-M (16 frames) and TimeSformer-B/16 (8 frames), all
at 224 x 224, batch 1, fp32 on the CPU threads here: median step time (forward, loss, backward; variants timed
round-robin so drifts of a shared machine hit all alike) and memory
(kept for backward; peak resident increase in a child process), with VMPs as a ratio to without
(lambda_v = 0, the reference setting). Goal: under 3 % time and 5 % memory.

    python benchmarks/backbone_overhead.py [--repeats 2] [--only slowfast,x3d,timesformer]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from measure import (
    machine_facts,
    peak_rss_in_child,
    peak_rss_increase,
    saved_for_backward_bytes,
    time_steps_interleaved,
    write_results,
)
from vmp_lightning.backbones import X3D, SlowFast, TimeSformer
from vmp_lightning.model import PromptedModel

CLASSES = 51
CASES = {  # name -> (backbone factory, frames the backbone sees, VMP settings to compare)
    "slowfast": (lambda k: SlowFast(k), 32, {"slow": ["slow"], "fast": ["fast"], "both": ["slow", "fast"]}),
    "x3d": (lambda k: X3D(k, size="m"), 16, {"input": None}),
    "timesformer": (lambda k: TimeSformer(k), 8, {"input": None}),
}


def make_step(name: str, variant: str):
    factory, frames, variants = CASES[name]
    torch.manual_seed(0)
    vmp = variant != "none"
    sites = variants.get(variant) if vmp else None
    model = PromptedModel(factory(CLASSES), CLASSES, frames, vmp=vmp, vmp_sites=sites)
    clip = torch.randn(1, 3, frames + int(vmp), 224, 224)
    labels = torch.zeros(1, dtype=torch.long)

    def step():
        model.zero_grad(set_to_none=True)
        logits, _ = model(clip)
        nn.functional.cross_entropy(logits, labels).backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--out", default="benchmarks/results/backbone_overhead")
    parser.add_argument("--peak-rss-of", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss_of:
        step = make_step(*args.peak_rss_of)
        step()
        print(peak_rss_increase(step))
        return
    rows = []
    for name in args.only.split(","):
        steps = {variant: make_step(name, variant) for variant in ["none", *CASES[name][2]]}
        seconds = time_steps_interleaved(steps, args.repeats)
        measured = {}
        for variant, step in steps.items():
            measured[variant] = {
                "seconds": seconds[variant],
                "saved_bytes": saved_for_backward_bytes(step),
                "peak_rss_increase_bytes": peak_rss_in_child(__file__, name, variant),
            }
            print(name, variant, measured[variant], flush=True)
        base = measured["none"]
        for variant, values in measured.items():
            if variant == "none":
                continue
            rows.append(
                {
                    "backbone": name,
                    "vmp": variant,
                    "time_ratio": values["seconds"] / base["seconds"],
                    "saved_ratio": values["saved_bytes"] / base["saved_bytes"],
                    "peak_ratio": values["peak_rss_increase_bytes"] / base["peak_rss_increase_bytes"],
                    "baseline_seconds": base["seconds"],
                    "baseline_saved_mib": base["saved_bytes"] / 2**20,
                }
            )
    machine = machine_facts()
    lines = [
        f"VMP overhead per training step, batch 1, 224 x 224, fp32, {machine['threads']} CPU threads, "
        f"torch {machine['torch']}, {machine['date']}",
        "",
        "| backbone | VMPs on | step time (+%) | kept for backward (+%) | peak RSS (+%) | baseline step (s) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['backbone']} | {r['vmp']} | {100 * (r['time_ratio'] - 1):+.1f} | {100 * (r['saved_ratio'] - 1):+.1f} | "
        f"{100 * (r['peak_ratio'] - 1):+.1f} | {r['baseline_seconds']:.2f} |"
        for r in rows
    ]
    write_results(args.out, {"machine": machine, "rows": rows}, lines)


if __name__ == "__main__":
    main()
