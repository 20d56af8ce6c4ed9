"""`vmp-lightning per-class`: per-class accuracy of two prediction dumps of the same test videos, and the
confusions that changed."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from vmp_lightning.analysis.common import log_to_wandb
from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.evaluation.predictions import read_predictions
from vmp_lightning.figures import save_figure
from vmp_lightning.runs import RunFolder


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
        try:
            dump = read_predictions(path)
        except ValueError as error:
            raise AnalysisError(str(error)) from None
        if not dump.video_ids:
            raise AnalysisError(f"{path}: not a prediction dump (needs video_id, label, prediction columns)")
        metrics = RunFolder.report_beside(path)
        names = json.loads(metrics.read_text()).get("class_names") if metrics.is_file() else None
        names = names or [f"class {k}" for k in range(dump.scores.shape[1])]
        return cls(
            path,
            dict(zip(dump.video_ids, dump.labels.tolist(), strict=True)),
            dict(zip(dump.video_ids, dump.predictions.tolist(), strict=True)),
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
