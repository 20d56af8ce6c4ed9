"""The analysis tools behind `vmp-lightning visualize | pn-compare | weight-similarity | per-class | compare-runs`,
callable from Python (a notebook) as they are. Each writes PNG (and CSV where there are numbers), logs the images
to the active W&B run when there is one, and returns what it computed."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.analysis.figures import PromptTrace, pn_curve_figure, prompt_grid_figure, save_figure, trace_prompt
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import AsinhE, Gamma, LearnableSigmoid, MaxExp, MotionPrompt, PowerNorm, SigmE

#: (m, n) the project site publishes for the learnable sigmoid, per dataset.
PUBLISHED_MN = {
    "finegym": (1.05, -2.67),
    "hmdb51": (0.2646, -0.6615),
    "mpii_cooking2": (0.257, 0.053),
    "ucf_crime": (0.8916, -0.2543),
}


def log_to_wandb(images: dict[str, Path]) -> None:
    """Log PNG files to the active W&B run, if any."""
    import wandb

    if wandb.run is not None:
        wandb.log({key: wandb.Image(str(path)) for key, path in images.items()})


# --- clips and prompt layers -------------------------------------------------------------------------------


def read_clip(
    video: str | Path, frames: int, stride: int = 1, start: int | None = None, size: int | None = None
) -> Tensor:
    """``frames`` consecutive frames (every ``stride``-th) of a video as uint8 ``3 x frames x H x W``, centred
    unless ``start`` is given; the short side resized to ``size`` when given."""
    from vmp_lightning.data.video import open_video, read_frames

    reader = open_video(video, backend="pyav")
    span = stride * (frames - 1) + 1
    if len(reader) < span:
        raise AnalysisError(
            f"{video}: {len(reader)} frames, shorter than the clip ({frames} frames at stride {stride} need {span})"
        )
    first = (len(reader) - span) // 2 if start is None else start
    if first < 0 or first + span > len(reader):
        raise AnalysisError(f"{video}: frames {first}..{first + span - 1} are outside its {len(reader)} frames")
    clip = torch.from_numpy(read_frames(reader, list(range(first, first + span, stride)))).permute(3, 0, 1, 2)
    if size is not None:
        h, w = clip.shape[-2:]
        scale = size / min(h, w)
        resized = torch.nn.functional.interpolate(
            clip.float(), size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True
        )
        clip = resized.round().clamp(0, 255).to(torch.uint8)
    return clip


def prompt_layers_of_checkpoint(path: str | Path) -> dict[str, MotionPrompt]:
    """The trained prompt layers of a `vmp-lightning fit` checkpoint (site -> layer)."""
    from vmp_lightning.module import VideoClassifier

    try:
        model = VideoClassifier.load_from_checkpoint(str(path), map_location="cpu")
    except Exception as error:
        raise AnalysisError(f"{path}: not a vmp-lightning checkpoint with its config ({error})") from error
    if not len(model.model.prompts):
        raise AnalysisError(f"{path}: this model has no motion prompt layer (trained with vmp off)")
    return dict(model.model.prompts.items())


def sigmoid_layer(m: float, n: float, normalization: Normalization | None = None) -> MotionPrompt:
    normalization = normalization or Normalization()
    pn = LearnableSigmoid(init_m=m, init_n=n)
    return MotionPrompt(normalization.mean, normalization.std, normalization.channel_order, pn)


# --- visualize ---------------------------------------------------------------------------------------------


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
        normalization = Normalization(layer.mean, layer.std, layer.channel_order)
        trace = trace_prompt(layer, normalization.apply(clip.unsqueeze(0)))
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


# --- pn-compare --------------------------------------------------------------------------------------------


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
    normalization = normalization or Normalization()
    out = Path(out)
    traces = {}
    for name, pn in pns.items():
        layer = MotionPrompt(normalization.mean, normalization.std, normalization.channel_order, pn)
        traces[name] = trace_prompt(layer, normalization.apply(clip[:, :2].unsqueeze(0)))
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


# --- weight-similarity -------------------------------------------------------------------------------------


def comparable_weights(path: str | Path) -> dict[str, Tensor]:
    """The learned weights of a checkpoint by name, in network order: the ``model.`` prefix removed, the prompt
    layer set aside (it exists with VMPs only), BatchNorm statistics left out."""
    from vmp_lightning.backbones.checkpoints import read_state_dict

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


# --- per-class ---------------------------------------------------------------------------------------------


@dataclass
class Predictions:
    """A prediction dump (`<stage>_predictions.csv` of a test, with its `<stage>_metrics.json`)."""

    path: Path
    labels: dict[str, int]
    predictions: dict[str, int]
    class_names: list[str]

    @classmethod
    def read(cls, path: str | Path) -> Predictions:
        path = Path(path)
        if not path.is_file():
            raise AnalysisError(f"prediction dump {path} not found (a test writes <run>/test_predictions.csv)")
        with path.open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows or not {"video_id", "label", "prediction"} <= set(rows[0]):
            raise AnalysisError(f"{path}: not a prediction dump (needs video_id, label, prediction columns)")
        scores = [c for c in rows[0] if c.startswith("score_")]
        metrics = path.with_name(path.name.replace("_predictions.csv", "_metrics.json"))
        names = json.loads(metrics.read_text()).get("class_names") if metrics.is_file() else None
        names = names or [f"class {k}" for k in range(len(scores))]
        return cls(
            path,
            {r["video_id"]: int(r["label"]) for r in rows},
            {r["video_id"]: int(r["prediction"]) for r in rows},
            names,
        )

    def accuracy_per_class(self) -> dict[int, tuple[int, float]]:
        counts, correct = Counter(self.labels.values()), Counter()
        for video, label in self.labels.items():
            correct[label] += self.predictions[video] == label
        return {k: (counts[k], correct[k] / counts[k]) for k in sorted(counts)}


def per_class(base: str | Path, other: str | Path, out: str | Path, top: int = 10) -> list[dict]:
    """Per-class accuracy of two prediction dumps of the same videos (baseline, then VMP), the sorted difference
    as a bar chart with class names (``per_class.png``), ``per_class.csv``, and the confusions (true -> predicted)
    whose count changed most (``confusions.csv``). Returns the per-class rows."""
    a, b = Predictions.read(base), Predictions.read(other)
    if set(a.labels) != set(b.labels):
        only_a, only_b = len(set(a.labels) - set(b.labels)), len(set(b.labels) - set(a.labels))
        raise AnalysisError(
            f"{a.path} and {b.path} hold different videos ({only_a} only in the first, {only_b} only in the "
            "second): compare dumps of the same test set"
        )
    if any(a.labels[v] != b.labels[v] for v in a.labels):
        raise AnalysisError(f"{a.path} and {b.path} give different labels for the same videos")
    accuracy_a, accuracy_b = a.accuracy_per_class(), b.accuracy_per_class()
    names = a.class_names
    rows = [
        {
            "class": k,
            "name": names[k] if k < len(names) else str(k),
            "videos": accuracy_a[k][0],
            "accuracy_base": accuracy_a[k][1],
            "accuracy_other": accuracy_b[k][1],
            "difference": accuracy_b[k][1] - accuracy_a[k][1],
        }
        for k in accuracy_a
    ]
    rows.sort(key=lambda r: (-r["difference"], r["class"]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "per_class.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    confusions_a = Counter((a.labels[v], a.predictions[v]) for v in a.labels if a.labels[v] != a.predictions[v])
    confusions_b = Counter((b.labels[v], b.predictions[v]) for v in b.labels if b.labels[v] != b.predictions[v])
    changed = sorted(
        ((pair, confusions_a[pair], confusions_b[pair]) for pair in confusions_a | confusions_b),
        key=lambda item: (-abs(item[2] - item[1]), item[0]),
    )[:top]
    with (out / "confusions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true", "predicted", "count_base", "count_other", "change"])
        for (true, predicted), before, after in changed:
            writer.writerow([names[true], names[predicted], before, after, after - before])
    figure = Figure(figsize=(max(6, 0.25 * len(rows) + 2), 4))
    ax = figure.subplots()
    colours = ["tab:green" if r["difference"] > 0 else "tab:red" for r in rows]
    ax.bar(range(len(rows)), [100 * r["difference"] for r in rows], color=colours)
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("accuracy difference (points)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title(f"per-class accuracy: {b.path.parent.name} - {a.path.parent.name}", fontsize=9)
    figure.tight_layout()
    log_to_wandb({"per_class": save_figure(figure, out / "per_class.png")})
    return rows


# --- compare-runs ------------------------------------------------------------------------------------------


def compare_runs(
    source: str | Path,
    out: str | Path,
    x: str | None = None,
    metric: str = "acc1",
    runs: str | Path = "experiments/runs",
) -> list[dict]:
    """Accuracy against the swept setting, one point per seed (or trial), with the mean per value: from a
    manifest (its runs under ``runs``; ``x`` = a setting that differs between its models, by default the one
    numeric setting that does, else the models' titles) or a sweep's ``summary.csv`` (``x`` = a parameter column,
    ``metric`` = its metric column). Writes ``compare_runs.png`` and ``.csv``; returns the points."""
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise AnalysisError(f"{source} not found (a manifest .yaml or a sweep's summary.csv)")
    if source.suffix == ".csv":
        with source.open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            raise AnalysisError(f"{source}: no rows")
        columns = [c for c in rows[0] if c not in ("trial", "folder")]
        metric = metric if metric in rows[0] else columns[-1]
        x = x or columns[0]
        if x not in rows[0]:
            raise AnalysisError(f"{source}: no column {x!r}; columns: {columns}")
        points = [
            {"x": float(r[x]), "group": f"trial {r.get('trial', '')}", "value": float(r[metric])}
            for r in rows
            if r[metric]
        ]
        return _plot_points(points, x, metric, out)
    from vmp_lightning.harness import load_manifest
    from vmp_lightning.harness.table import collect

    manifest = load_manifest(source)
    if x is None:
        varying = [
            k
            for k in dict.fromkeys(k for r in manifest.runs for k in r.settings)
            if len({json.dumps(r.settings.get(k)) for r in manifest.runs}) > 1
        ]
        numeric = [k for k in varying if all(isinstance(r.settings.get(k), (int, float)) for r in manifest.runs)]
        x = numeric[0] if len(numeric) == 1 else None
    titles = dict(manifest.rows)
    by_name = {r.name: r for r in manifest.runs}
    points = []
    for row in collect(manifest, Path(runs)):
        run = by_name[row["run"].split("/", 1)[1]]
        if row[metric] is not None:
            value = run.settings.get(x) if x else titles[run.model]
            points.append({"x": value, "group": f"seed {run.seed}", "value": row[metric] / 100})
    if not points:
        raise AnalysisError(f"{source}: none of its runs under {runs} is done (vmp-lightning reproduce {source})")
    return _plot_points(points, x or "model", metric, out)


def _plot_points(points: list[dict], x: str, metric: str, out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "compare_runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["x", "group", "value"])
        writer.writeheader()
        writer.writerows(points)
    numeric = all(isinstance(p["x"], (int, float)) for p in points)
    values = sorted({p["x"] for p in points}) if numeric else list(dict.fromkeys(p["x"] for p in points))
    position = {v: (v if numeric else i) for i, v in enumerate(values)}
    figure = Figure(figsize=(6, 3.8))
    ax = figure.subplots()
    ax.scatter([position[p["x"]] for p in points], [100 * p["value"] for p in points], alpha=0.6, label="run")
    means = [100 * float(np.mean([p["value"] for p in points if p["x"] == v])) for v in values]
    ax.plot([position[v] for v in values], means, color="black", marker="o", label="mean")
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    log_to_wandb({"compare_runs": save_figure(figure, out / "compare_runs.png")})
    return points
