"""The numbers behind a table's cells: mean and standard deviation over seeds, and the gain of a VMP row over its
baseline with a confidence interval from a paired bootstrap over the test videos, pooled over seeds.

Most of the paper's VMP gains are 0.2 to 1.5 points, inside the run-to-run noise of a test set of 1,530 videos
(HMDB-51): the interval says whether a gain is more than that noise.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vmp_lightning.evaluation.predictions import PredictionDump, read_predictions


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


@functools.lru_cache(maxsize=256)
def _read_once(path: str, stamp: tuple[int, int]) -> PredictionDump:
    return read_predictions(path)


def prediction_dump(path: str | Path) -> PredictionDump:
    """A run's ``test_predictions.csv``, read once while the file is unchanged (a table reads a baseline's dump for
    every VMP row and column that compares with it)."""
    stat = Path(path).stat()
    return _read_once(str(path), (stat.st_mtime_ns, stat.st_size))


def correct_per_video(predictions: str | Path, top: int = 1) -> dict[str, float]:
    """video id -> 1.0 when the label is among the ``top`` highest scores of a ``test_predictions.csv``, else 0.0."""
    dump = prediction_dump(predictions)
    return dict(zip(dump.video_ids, dump.correct(top).tolist(), strict=True))


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
