"""`vmp-lightning visualize`: every step of a clip through the prompt layers, as a grid, a GIF, 3D surfaces, and the
learned PN curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from vmp_lightning.analysis.common import log_to_wandb
from vmp_lightning.figures import PromptTrace, pn_curve_figure, prompt_grid_figure, save_figure, trace_prompt
from vmp_lightning.prompt import MotionPrompt


def visualize(
    clip: Tensor,
    layers: dict[str, MotionPrompt],
    out: str | Path,
    title: str = "",
    gif: bool = True,
    surfaces: bool = False,
) -> dict[str, PromptTrace]:
    """For a uint8 clip ``3 x (T+1) x H x W`` and prompt layers: ``<site>_grid.png`` (frames, D, attention and
    prompts over all T steps), ``<site>_prompts.gif``, ``pn_curve.png``, optionally ``<site>_surfaces.png``
    (3D surfaces of D and A of the middle step). Returns each site's `PromptTrace`."""
    out = Path(out)
    traces, images = {}, {}
    for site, layer in layers.items():
        trace = trace_prompt(layer, clip)
        traces[site] = trace
        images[f"{site}/grid"] = save_figure(
            prompt_grid_figure(trace, f"{title} ({site})".strip()), out / f"{site}_grid.png"
        )
        if gif:
            write_gif(trace.prompts, out / f"{site}_prompts.gif")
        if surfaces:
            images[f"{site}/surfaces"] = save_figure(surface_figure(trace), out / f"{site}_surfaces.png")
    curves = pn_curve_figure({site: layer.pn for site, layer in layers.items()}, "learned PN function")
    images["pn_curve"] = save_figure(curves, out / "pn_curve.png")
    log_to_wandb({f"visualize/{k}": v for k, v in images.items()})
    return traces


def write_gif(frames: np.ndarray, path: Path, fps: float = 4.0) -> Path:
    from PIL import Image

    images = [Image.fromarray((np.clip(f, 0, 1) * 255).round().astype(np.uint8)) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def surface_figure(trace: PromptTrace) -> Figure:
    t = trace.attention.shape[0] // 2
    figure = Figure(figsize=(9, 4))
    for index, (name, values, limits) in enumerate(
        (("D", trace.differences[t], (-1, 1)), ("attention A", trace.attention[t], (0, 1)))
    ):
        ax = figure.add_subplot(1, 2, index + 1, projection="3d")
        y, x = np.mgrid[: values.shape[0], : values.shape[1]]
        ax.plot_surface(x, y, values, cmap="RdBu_r" if name == "D" else "viridis", vmin=limits[0], vmax=limits[1])
        ax.set_zlim(*limits)
        ax.set_title(f"{name}, step {t}", fontsize=9)
    return figure
