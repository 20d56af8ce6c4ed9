"""`vmp-lightning compare-runs`: accuracy against a swept setting, one point per seed or trial."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vmp_lightning.analysis.common import log_to_wandb
from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.figures import save_figure
from vmp_lightning.harness import load_manifest
from vmp_lightning.harness.table import collect


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
