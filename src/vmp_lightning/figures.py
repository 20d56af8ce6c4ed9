"""Figures of the prompt layer: every step of one clip (frames, D, attention, prompts) and the PN curve.

The numbers drawn are the layer's own (`MotionPrompt.differences`, `attention`, `forward`), so a figure shows
exactly what the backbone was given. Figures are made without pyplot (no GUI backend, nothing kept open).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import MotionPrompt, PowerNorm
from vmp_lightning.prompt.pn import LearnableSigmoid


@dataclass
class PromptTrace:
    """One clip through a prompt layer, as arrays: ``frames`` (T+1) x H x W x 3 in [0, 1], ``differences`` and
    ``attention`` T x H x W, ``prompts`` T x H x W x 3 (de-normalised for display, in [0, 1])."""

    frames: np.ndarray
    differences: np.ndarray
    attention: np.ndarray
    prompts: np.ndarray


def _display(clip: Tensor, normalization: Normalization) -> np.ndarray:
    """A normalised ``3 x T x H x W`` clip as ``T x H x W x 3`` RGB in [0, 1]."""
    return normalization.invert(clip).permute(1, 2, 3, 0).numpy()


@torch.no_grad()
def trace_prompt(layer: MotionPrompt, clip: Tensor) -> PromptTrace:
    """Run a clip ``1 x 3 x (T+1) x H x W`` (or ``3 x (T+1) x H x W``) through ``layer``: uint8 pixels, normalised
    here with the layer's `Normalization`, or a clip normalised already."""
    clip = clip.unsqueeze(0) if clip.dim() == 4 else clip
    clip = clip[:1].to(next(iter(layer.buffers())).device)
    normalization = layer.normalization
    clip = normalization.apply(clip) if clip.dtype == torch.uint8 else clip
    prompts, attention = layer(clip)
    return PromptTrace(
        frames=_display(clip[0], normalization),
        differences=layer.differences(clip)[0].float().cpu().numpy(),
        attention=attention[0].float().cpu().numpy(),
        prompts=_display(prompts[0], normalization),
    )


def prompt_grid_figure(trace: PromptTrace, title: str = "", max_steps: int | None = None) -> Figure:
    """Rows: frame t+1, D_t (diverging, -1..1), attention A_t (0..1), prompt_t; one column per step t."""
    steps = trace.attention.shape[0] if max_steps is None else min(max_steps, trace.attention.shape[0])
    rows = [
        ("frame t+1", trace.frames[1 : steps + 1], {}),
        ("D (luma difference)", trace.differences[:steps], {"cmap": "RdBu_r", "vmin": -1, "vmax": 1}),
        ("attention A", trace.attention[:steps], {"cmap": "viridis", "vmin": 0, "vmax": 1}),
        ("motion prompt", trace.prompts[:steps], {}),
    ]
    figure = Figure(figsize=(1.6 * steps + 1.2, 1.7 * len(rows)))
    axes = figure.subplots(len(rows), steps, squeeze=False)
    for r, (name, images, style) in enumerate(rows):
        for t in range(steps):
            shown = axes[r, t].imshow(images[t], **style)
            axes[r, t].set_xticks([])
            axes[r, t].set_yticks([])
            if r == 0:
                axes[r, t].set_title(f"t = {t}", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
        if style:
            figure.colorbar(shown, ax=axes[r, :].tolist(), fraction=0.02, pad=0.01)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def pn_curve_figure(pns: dict[str, PowerNorm], title: str = "PN function") -> Figure:
    """``f(D)`` on D in [-1, 1] for each named PN function; a learnable sigmoid's shift b is marked and its slope a
    given in the legend."""
    figure = Figure(figsize=(4.5, 3.2))
    ax = figure.subplots()
    d = torch.linspace(-1, 1, 401)
    for name, pn in pns.items():
        with torch.no_grad():
            y = pn(d.view(1, 1, 1, -1)).flatten().float().numpy()
        label = name
        if isinstance(pn, LearnableSigmoid):
            a, b = pn.a.item(), pn.b.item()
            label += f" (a = {a:.3g}, b = {b:.3g})"
            ax.axvline(b, color="grey", linestyle=":", linewidth=1)
        ax.plot(d.numpy(), y, label=label)
    ax.set_xlabel("D (signed luma difference)")
    ax.set_ylabel("f(D)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def figure_array(figure: Figure) -> np.ndarray:
    """The figure as an H x W x 3 uint8 array (for loggers)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
