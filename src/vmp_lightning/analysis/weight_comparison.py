"""`vmp-lightning weight-similarity`: how far fine-tuning (with or without VMPs) moved each layer's weights."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from vmp_lightning.analysis.common import log_to_wandb
from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.backbones.checkpoints import read_state_dict
from vmp_lightning.figures import save_figure


def comparable_weights(path: str | Path) -> dict[str, Tensor]:
    """The learned weights of a checkpoint by name, in network order: the ``model.`` prefix removed, the prompt
    layer set aside (it exists with VMPs only), BatchNorm statistics left out."""
    try:
        state = read_state_dict(path)
    except (FileNotFoundError, ValueError) as error:
        raise AnalysisError(str(error)) from error
    weights = {}
    for key, value in state.items():
        name = key[len("model.") :] if key.startswith("model.") else key
        if name.startswith(("prompts.", "vmps.")) or not value.is_floating_point():
            continue
        if name.endswith(("running_mean", "running_var")):
            continue
        weights[name] = value.float()
    return weights


@dataclass
class LayerSimilarity:
    name: str
    numel: int
    cosine: dict[str, float]  # pair label -> cosine similarity of the flattened weights
    relative_change: dict[str, float]  # pair label -> ||B - A|| / ||A||


def weight_similarity(
    paths: list[str | Path], out: str | Path, labels: list[str] | None = None
) -> list[LayerSimilarity]:
    """Per-layer similarity of 2 or 3 checkpoints against the first (and the second against the third): cosine
    of the flattened weights and relative L2 change, layers matched by name in network order (the classifier head
    is left out when its shapes differ). Writes ``weight_similarity.png`` and ``.csv``."""
    if not 2 <= len(paths) <= 3:
        raise AnalysisError(f"weight-similarity compares 2 or 3 checkpoints, got {len(paths)}")
    labels = labels or [Path(p).stem for p in paths]
    states = [comparable_weights(p) for p in paths]
    common = [k for k in states[0] if all(k in s and s[k].shape == states[0][k].shape for s in states[1:])]
    smallest = min(len(s) for s in states)
    if len(common) < 0.5 * smallest:
        raise AnalysisError(
            f"{paths[0]} and {paths[1:]} share {len(common)} of {smallest} weight tensors by name and shape: "
            "checkpoints of different architectures?"
        )
    pairs = [(0, 1)] + ([(0, 2), (1, 2)] if len(paths) == 3 else [])
    layers = []
    for name in common:
        cosine, change = {}, {}
        for i, j in pairs:
            a, b = states[i][name].flatten().double(), states[j][name].flatten().double()
            label = f"{labels[i]} vs {labels[j]}"
            norms = a.norm() * b.norm()
            cosine[label] = float(a @ b / norms) if norms > 0 else float(torch.equal(a, b))
            change[label] = float((b - a).norm() / a.norm()) if a.norm() > 0 else float(b.norm() > 0)
        layers.append(LayerSimilarity(name, states[0][name].numel(), cosine, change))
    _write_similarity(layers, Path(out))
    return layers


def _write_similarity(layers: list[LayerSimilarity], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pairs = list(layers[0].cosine)
    with (out / "weight_similarity.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["index", "layer", "numel", *(f"cosine {p}" for p in pairs), *(f"relative change {p}" for p in pairs)]
        )
        for index, layer in enumerate(layers):
            writer.writerow(
                [index, layer.name, layer.numel, *(f"{layer.cosine[p]:.6f}" for p in pairs)]
                + [f"{layer.relative_change[p]:.6f}" for p in pairs]
            )
    figure = Figure(figsize=(10, 5.5))
    top, bottom = figure.subplots(2, 1, sharex=True)
    x = np.arange(len(layers))
    for pair in pairs:
        top.plot(x, [layer.cosine[pair] for layer in layers], marker=".", linewidth=1, label=pair)
        bottom.plot(x, [layer.relative_change[pair] for layer in layers], marker=".", linewidth=1, label=pair)
    top.set_ylabel("cosine similarity")
    bottom.set_ylabel("relative L2 change")
    bottom.set_xlabel("layer (network order; names in weight_similarity.csv)")
    ticks = x[:: max(1, len(x) // 12)]
    bottom.set_xticks(
        ticks, [layers[i].name.rsplit(".", 1)[0][-24:] for i in ticks], rotation=45, ha="right", fontsize=6
    )
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    log_to_wandb({"weight_similarity": save_figure(figure, out / "weight_similarity.png")})
