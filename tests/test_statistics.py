"""The numbers of a table with seeds (harness/statistics.py, harness/table.py): mean and standard deviation over
seeds, and the paired bootstrap interval of a VMP row's gain, against hand computations."""

from __future__ import annotations

import csv
import statistics

import numpy as np
import pytest

from helpers import REPO
from vmp_lightning.commands import main
from vmp_lightning.harness.statistics import correct_per_video, mean_and_std, paired_bootstrap_gain


def write_predictions(path, predictions: dict[str, tuple[int, list[float]]]) -> None:
    """A test_predictions.csv: video -> (label, scores)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "label", "prediction", "score_0", "score_1", "score_2"])
        for video, (label, scores) in predictions.items():
            writer.writerow([video, label, int(np.argmax(scores)), *scores])


def test_correct_per_video_reads_top1_and_top_k(tmp_path):
    write_predictions(tmp_path / "p.csv", {"a": (0, [0.9, 0.05, 0.05]), "b": (2, [0.5, 0.3, 0.2])})
    assert correct_per_video(tmp_path / "p.csv") == {"a": 1.0, "b": 0.0}
    assert correct_per_video(tmp_path / "p.csv", top=2) == {"a": 1.0, "b": 0.0}
    assert correct_per_video(tmp_path / "p.csv", top=3) == {"a": 1.0, "b": 1.0}


def test_the_gain_interval_is_a_paired_bootstrap_over_videos_pooled_over_seeds():
    """Hand-made correctness of 2 seeds x 6 videos: the gain is the mean difference; the interval is what drawing
    the videos 2,000 times with numpy's default_rng(0) gives, computed here step by step."""
    base = np.array([[1, 0, 0, 1, 0, 1], [1, 0, 1, 1, 0, 0]], float)
    vmp = np.array([[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1]], float)
    gain = paired_bootstrap_gain([vmp - base], resamples=2000, seed=0)
    per_video = (vmp - base).mean(axis=0)  # seeds pooled: [0, 1, 0, 0, 0.5, 0.5]
    draws = np.random.default_rng(0).integers(0, 6, size=(2000, 6))  # 2,000 draws of 6 videos, with replacement
    low, high = np.percentile(per_video[draws].mean(axis=1), [2.5, 97.5])
    assert gain.value == pytest.approx(100 * 2 / 6)
    assert (gain.low, gain.high) == pytest.approx((100 * low, 100 * high))
    assert gain.significant == (low > 0) and gain.text().startswith("+33.3 [")
    assert mean_and_std([74.0, 74.5, 73.6]) == (pytest.approx(74.0333, abs=1e-4), statistics.stdev([74.0, 74.5, 73.6]))
    assert mean_and_std([74.0]) == (74.0, None)


def test_reproduce_with_seeds_reports_mean_std_and_the_gains_interval(tmp_path, monkeypatch):
    """`vmp-lightning reproduce --seeds 0,1` of a baseline and its VMP row (smoke size): each cell mean ± std over
    the seeds, the VMP row's gain with its interval, every number in the cells CSV."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(REPO)
    where = [f"--out={tmp_path / 'runs'}", f"--results={tmp_path / 'results'}"]
    only = "--only=x3d/mpii_cooking2,x3d+vmp/mpii_cooking2"
    main(["reproduce", "experiments/table2.yaml", "--smoke", "--seeds", "0,1", only, *where])
    runs = sorted(p.parent.parent.parent.name for p in (tmp_path / "runs").rglob("metrics.json"))
    assert runs == ["seed0", "seed0", "seed1", "seed1"]
    md = (tmp_path / "results" / "smoke" / "table2.md").read_text()
    x3d = next(line for line in md.splitlines() if line.startswith("| X3D |"))
    assert x3d.count(" ± ") == 2  # MPII Cooking 2 top-1 and top-5
    gains = md.split("Gain of each VMP row")[1]
    vmp_gain = next(line for line in gains.splitlines() if line.startswith("| + VMPs |"))
    assert vmp_gain.count(" [") == 2 and "not run" not in gains
    with (tmp_path / "results" / "smoke" / "table2_cells.csv").open() as handle:
        cells = [r for r in csv.DictReader(handle) if r["model"] == "x3d+vmp" and r["column"].startswith("MPII")]
    (cell,) = cells
    assert (
        cell["seeds"] == "0 1"
        and cell["std"]
        and float(cell["gain_low"]) <= float(cell["gain"]) <= float(cell["gain_high"])
    )
