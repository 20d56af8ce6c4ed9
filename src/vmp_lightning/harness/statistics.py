"""The numbers behind a table's cells: mean and standard deviation over seeds, and the gain of a VMP row over its
baseline with a confidence interval from a paired bootstrap over the test videos, pooled over seeds.

Most of the paper's VMP gains are 0.2 to 1.5 points, inside the run-to-run noise of a test set of 1,530 videos
(HMDB-51): the interval says whether a gain is more than that noise.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def correct_per_video(predictions: str | Path, top: int = 1) -> dict[str, float]:
    """video id -> 1.0 when the label is among the ``top`` highest scores of a ``test_predictions.csv``, else 0.0."""
    with Path(predictions).open() as handle:
        rows = list(csv.DictReader(handle))
    correct = {}
    for row in rows:
        scores = np.array([float(row[c]) for c in row if c.startswith("score_")])
        best = np.argsort(-scores, kind="stable")[:top] if len(scores) else [int(row["prediction"])]
        correct[row["video_id"]] = float(int(row["label"]) in best)
    return correct


@dataclass(frozen=True)
class Gain:
    """VMP minus baseline accuracy (points), with the bounds of its confidence interval."""

    value: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    def text(self) -> str:
        return f"{self.value:+.1f} [{self.low:+.1f}, {self.high:+.1f}]" + ("*" if self.significant else "")


def paired_bootstrap_gain(
    differences: list[np.ndarray], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> Gain:
    """``differences``: per dataset of a cell, a seeds x videos array of VMP minus baseline correctness (the same
    videos and seeds in both rows). The gain is the mean over the datasets of the mean over seeds and videos; each
    resample draws each dataset's videos with replacement, the same draw for every seed (paired by video), with
    ``numpy.random.default_rng(seed)``; the interval is the central ``level`` of the resampled gains. In points."""
    rng = np.random.default_rng(seed)
    resampled = np.zeros(resamples)
    for difference in differences:
        per_video = difference.mean(axis=0)
        draws = rng.integers(0, len(per_video), size=(resamples, len(per_video)))
        resampled += per_video[draws].mean(axis=1)
    resampled /= len(differences)
    value = float(np.mean([d.mean() for d in differences]))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Gain(100 * value, 100 * float(low), 100 * float(high))
