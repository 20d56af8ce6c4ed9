"""The prediction dump of an evaluation: ``<stage>_predictions.csv`` (one row per video: id, label, prediction, the
aggregated scores) and ``<stage>_metrics.json``, written once by the test and read back by the table and the
analysis tools. numpy and csv only, so reading a dump loads no torch."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vmp_lightning.files import atomic_write, write_text
from vmp_lightning.runs import RunFolder

if TYPE_CHECKING:
    from vmp_lightning.evaluation.video_level import Evaluation


def write_predictions(
    folder: str | Path, stage: str, evaluation: Evaluation, class_names: list[str] | None = None
) -> Path:
    """Write ``<stage>_predictions.csv`` (video_id, label, prediction, score_0 .. score_{K-1}: the aggregated
    video scores) and ``<stage>_metrics.json`` (the video-level report and the class names); returns the CSV path."""
    run = RunFolder(folder)
    run.path.mkdir(parents=True, exist_ok=True)
    path = run.predictions(stage)
    scores, labels = evaluation.scores, evaluation.labels.tolist()
    with atomic_write(path) as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "label", "prediction", *(f"score_{k}" for k in range(scores.shape[1]))])
        rows = zip(evaluation.video_ids, labels, scores.argmax(1).tolist(), scores.tolist(), strict=True)
        for video_id, label, prediction, row in rows:
            writer.writerow([video_id, label, prediction, *(f"{v:.6g}" for v in row)])
    metrics = {**evaluation.report.__dict__, "class_names": class_names}
    write_text(run.evaluation_report(stage), json.dumps(metrics, indent=1))
    return path


@dataclass(frozen=True)
class PredictionDump:
    """A ``<stage>_predictions.csv`` read back: video ids, labels, predictions and the V x K scores (K may be 0)."""

    video_ids: list[str]
    labels: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray

    def correct(self, top: int = 1) -> np.ndarray:
        """1.0 for each video whose label is among its ``top`` highest scores (the prediction when there are no
        scores), else 0.0."""
        if not self.scores.shape[1]:
            return (self.predictions == self.labels).astype(float)
        best = np.argsort(-self.scores, axis=1, kind="stable")[:, :top]
        return (best == self.labels[:, None]).any(axis=1).astype(float)


def read_predictions(path: str | Path) -> PredictionDump:
    """A dump written by `write_predictions`; `ValueError` naming the file when it lacks the columns."""
    with Path(path).open() as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"video_id", "label", "prediction"} <= set(rows[0]):
        raise ValueError(f"{path}: not a prediction dump (needs video_id, label, prediction columns)")
    columns = [c for c in rows[0] if c.startswith("score_")] if rows else []
    return PredictionDump(
        [row["video_id"] for row in rows],
        np.array([int(row["label"]) for row in rows], dtype=np.int64),
        np.array([int(row["prediction"]) for row in rows], dtype=np.int64),
        np.array([[float(row[c]) for c in columns] for row in rows], dtype=np.float64).reshape(len(rows), len(columns)),
    )
