"""Our TimeSformer against Hugging Face transformers' `TimesformerModel` at the same size, same inputs.

ViT-B/16, divided space-time attention, 8 frames at 224 x 224, batch 1, fp32, with a linear head on the class
token for both (ours: timm attention on `scaled_dot_product_attention`; transformers 5.24: eager attention, the
only kind it offers for this model); median forward + backward time and memory kept for backward.
transformers is not a dependency of this project: install it beside the benchmark only (`make bench-hf` does):

    pip install --no-deps --target .bench-hf transformers==5.24.0 tokenizers regex
    PYTHONPATH=.bench-hf python benchmarks/timesformer_vs_hf.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from measure import saved_for_backward_bytes, time_step
from vmp_lightning.backbones import TimeSformer

CLASSES, FRAMES, SIZE = 51, 8, 224


class HFClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from transformers import TimesformerConfig, TimesformerModel

        # transformers 5.24 offers only its eager attention for TimeSformer (it refuses "sdpa")
        config = TimesformerConfig(num_frames=FRAMES, image_size=SIZE, attention_type="divided_space_time")
        self.model = TimesformerModel(config)
        self.head = nn.Linear(config.hidden_size, CLASSES)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:  # B x C x T x H x W, as ours
        return self.head(self.model(clip.transpose(1, 2)).last_hidden_state[:, 0])


def training_step(model: nn.Module, clip: torch.Tensor, labels: torch.Tensor):
    def step() -> None:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(clip), labels).backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/timesformer_vs_hf")
    args = parser.parse_args()
    torch.manual_seed(0)
    clip = torch.randn(1, 3, FRAMES, SIZE, SIZE)
    labels = torch.zeros(1, dtype=torch.long)
    results = {}
    for name, model in (("ours", TimeSformer(CLASSES, drop_path_rate=0.0)), ("hf transformers", HFClassifier())):
        step = training_step(model, clip, labels)
        results[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "seconds": time_step(step, args.repeats),
            "saved_bytes": saved_for_backward_bytes(step),
        }
        print(name, results[name], flush=True)
    ratio = {
        "hf / ours time": results["hf transformers"]["seconds"] / results["ours"]["seconds"],
        "hf / ours saved-for-backward memory": results["hf transformers"]["saved_bytes"]
        / results["ours"]["saved_bytes"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"results": results, **ratio}, indent=2))
    lines = [
        f"TimeSformer-B/16 8 x 224, batch 1, fp32, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}",
        "",
        "| implementation | parameters (M) | step time (s) | kept for backward (MiB) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {r['parameters'] / 1e6:.1f} | {r['seconds']:.2f} | {r['saved_bytes'] / 2**20:.0f} |"
            for name, r in results.items()
        ),
        "",
        *(f"- {key}: {value:.2f}" for key, value in ratio.items()),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
