"""`vmp-lightning pn-compare`: one frame pair through the paper's PN functions, side by side."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from torch import Tensor

from vmp_lightning.analysis.common import log_to_wandb
from vmp_lightning.figures import PromptTrace, pn_curve_figure, save_figure, trace_prompt
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import AsinhE, Gamma, LearnableSigmoid, MaxExp, MotionPrompt, PowerNorm, SigmE


def baseline_pns(
    gamma: float = 0.5,
    maxexp_eta: float = 10.0,
    sigme_eta: float = 20.0,
    asinhe_gamma: float = 10.0,
    m: float = 1.05,
    n: float = -2.67,
) -> dict[str, PowerNorm]:
    """The paper's comparison: Gamma, MaxExp, SigmE, AsinhE (on |D|) and the learnable sigmoid (default: the
    project site's FineGym (m, n))."""
    return {
        "Gamma": Gamma(gamma),
        "MaxExp": MaxExp(maxexp_eta),
        "SigmE": SigmE(sigme_eta),
        "AsinhE": AsinhE(asinhe_gamma),
        "PN (learnable sigmoid)": LearnableSigmoid(init_m=m, init_n=n),
    }


def pn_compare(
    clip: Tensor, pns: dict[str, PowerNorm], out: str | Path, normalization: Normalization | None = None
) -> dict[str, PromptTrace]:
    """One frame pair (a uint8 clip ``3 x 2 x H x W``) through each PN function: ``pn_compare.png`` (rows: PN
    functions; columns: D, attention, prompt) and ``pn_curves.png``. Returns each function's trace."""
    out = Path(out)
    traces = {name: trace_prompt(MotionPrompt(normalization, pn), clip[:, :2]) for name, pn in pns.items()}
    figure = Figure(figsize=(7.5, 2.2 * len(pns)))
    axes = figure.subplots(len(pns), 3, squeeze=False)
    for row, (name, trace) in enumerate(traces.items()):
        panels = (
            ("D", trace.differences[0], {"cmap": "RdBu_r", "vmin": -1, "vmax": 1}),
            ("attention", trace.attention[0], {"cmap": "viridis", "vmin": 0, "vmax": 1}),
            ("prompt", trace.prompts[0], {}),
        )
        for col, (label, image, style) in enumerate(panels):
            axes[row, col].imshow(image, **style)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(label, fontsize=9)
        axes[row, 0].set_ylabel(name, fontsize=8)
    figure.tight_layout()
    images = {"grid": save_figure(figure, out / "pn_compare.png")}
    images["curves"] = save_figure(pn_curve_figure(pns, "PN functions"), out / "pn_curves.png")
    log_to_wandb({f"pn_compare/{k}": v for k, v in images.items()})
    return traces
