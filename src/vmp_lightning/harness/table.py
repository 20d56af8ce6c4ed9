"""`vmp-lightning table <manifest>`: the runs' test metrics laid out like the paper's table, beside its numbers."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vmp_lightning.errors import UserError
from vmp_lightning.files import atomic_write, write_text
from vmp_lightning.harness.manifest import Manifest, ManifestError
from vmp_lightning.harness.reproduce import run_folder, run_metrics
from vmp_lightning.harness.statistics import (
    Gain,
    correct_per_video,
    mean_and_std,
    paired_bootstrap_gain,
    prediction_dump,
)
from vmp_lightning.runs import RunFolder

METRICS = {"acc1": 0, "acc5": 1}  # index into a run's paper (top-1, top-5)
GAINS_CAPTION = (
    "Gain of each VMP row over its baseline, points, with its 95 % confidence interval (paired bootstrap over the "
    "test videos, 2,000 resamples, pooled over seeds; * the interval excludes 0):"
)


class DifferentTestVideos(UserError, ValueError):
    """Two rows of a column were tested on different videos: their numbers are not comparable."""


def tested_videos(metrics_path: str | Path) -> frozenset[str] | None:
    """The video ids a run was tested on (its ``test_predictions.csv``, beside its ``metrics.json``)."""
    path = RunFolder(Path(metrics_path).parent).predictions("test")
    return frozenset(prediction_dump(path).video_ids) if path.is_file() else None


def check_same_test_videos(rows: list[dict]) -> None:
    """Every done run of a dataset (a column) tested on the same videos, or `DifferentTestVideos` naming two runs and
    the videos one of them lacks: a video dropped or replaced for one model only would bias the comparison."""
    first: dict[str, dict] = {}
    for row in rows:
        videos = row.get("test_videos")
        if videos is None:
            continue
        reference = first.setdefault(row["dataset"], row)
        if videos != reference["test_videos"]:
            only = sorted(reference["test_videos"] - videos) or sorted(videos - reference["test_videos"])
            raise DifferentTestVideos(
                f"{reference['run']} was tested on {len(reference['test_videos'])} videos, {row['run']} on "
                f"{len(videos)}; not in both: {', '.join(only[:5])}{' ...' if len(only) > 5 else ''}. Rows of a table "
                "must be scored on the same videos: re-test both runs on the same test list"
            )


def collect(manifest: Manifest, out: Path) -> list[dict]:
    """One row per run: our top-1 / top-5 (%), the paper's, the differences, the run folder and W&B link."""
    rows = []
    for run in manifest.runs:
        record = run_metrics(run_folder(out, run))
        row = {"run": f"{manifest.name}/{run.name}", "model": run.model, "dataset": run.dataset, "seed": run.seed}
        row["status"] = "done" if record else "not run"
        for metric, index in METRICS.items():
            ours = record["test"].get(f"test/{metric}") if record else None
            row[metric] = None if ours is None else round(100 * ours, 2)
            row[f"paper_{metric}"] = run.paper[index]
            both = row[metric] is not None and run.paper[index] is not None
            row[f"diff_{metric}"] = round(row[metric] - run.paper[index], 2) if both else None
        row["folder"] = str(Path(record["path"]).parent) if record else ""
        row["wandb_url"] = (record or {}).get("wandb_url") or ""
        row["tested"] = _tested(record) if record else ""
        row["test_videos"] = tested_videos(record["path"]) if record else None
        rows.append(row)
    return rows


def _tested(record: dict) -> str:
    """Which checkpoint a run's test metrics come from, for the table's footnote."""
    name = Path(record.get("best_checkpoint") or "").name or "the final weights"
    monitor = record.get("monitor")
    return f"the best on {monitor} ({name})" if monitor else f"the last checkpoint ({name}), no validation"


@dataclass
class Cell:
    """One cell of the table: our mean over seeds (each seed's mean over the column's datasets), its standard
    deviation, the paper's number, and for a VMP row its gain over its baseline."""

    model: str
    column: str
    position: int  # the column's index (titles repeat: "top-5")
    metric: str
    runs: list[dict]
    published: float | None = None
    gain: Gain | None = None

    @property
    def done(self) -> bool:
        return all(run[self.metric] is not None for run in self.runs)

    def per_seed(self) -> dict:
        means: dict = {}
        for run in self.runs:
            means.setdefault(run["seed"], []).append(run[self.metric])
        return {seed: sum(values) / len(values) for seed, values in means.items()}

    def statistics(self) -> tuple[float, float | None]:
        return mean_and_std(list(self.per_seed().values()))

    @property
    def paper(self) -> float | None:
        papers = [run[f"paper_{self.metric}"] for run in self.runs if run["seed"] == self.runs[0]["seed"]]
        if self.published is not None or not all(p is not None for p in papers):
            return self.published
        return sum(papers) / len(papers)

    def text(self) -> str:
        """``ours ± std (paper, ours - paper)``; ``not run`` until all its runs are done."""
        if not self.done:
            done = sum(run[self.metric] is not None for run in self.runs)
            return "not run" if not done else f"{done}/{len(self.runs)} runs"
        ours, std = self.statistics()
        text = f"{ours:.1f}" + (f" ± {std:.1f}" if std is not None else "")
        if len(self.runs) == 1 and self.runs[0]["wandb_url"]:
            text = f"[{text}]({self.runs[0]['wandb_url']})"
        if self.paper is not None:
            text += f" ({self.paper:.1f}, {ours - self.paper:+.1f})"
        return text

    def record(self) -> dict:
        """Every number of the cell, for the cells CSV."""
        ours, std = self.statistics() if self.done else (None, None)
        gain = self.gain
        return {
            "model": self.model,
            "column": self.column,
            "metric": self.metric,
            "seeds": " ".join(str(seed) for seed in self.per_seed()) if self.done else "",
            "mean": None if ours is None else round(ours, 2),
            "std": None if std is None else round(std, 2),
            "paper": self.paper,
            "diff": None if ours is None or self.paper is None else round(ours - self.paper, 2),
            "gain": None if gain is None else round(gain.value, 2),
            "gain_low": None if gain is None else round(gain.low, 2),
            "gain_high": None if gain is None else round(gain.high, 2),
            "gain_excludes_0": None if gain is None else gain.significant,
        }


def cells(manifest: Manifest, rows: list[dict]) -> list[Cell]:
    """The table's cells, row by row, with the gains of the VMP rows whose baseline is done."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_key.setdefault((row["model"], row["dataset"]), []).append(row)
    table: list[Cell] = []
    for model, _ in manifest.rows:
        for position, column in enumerate(manifest.columns):
            datasets = column.get("mean_of") or [column.get("dataset")]
            try:
                runs = [row for d in datasets for row in by_key[(model, d)]]
            except KeyError as error:
                raise ManifestError(f"{manifest.path}: column {column['title']!r} names {error}") from None
            metric = column.get("metric", "acc1")
            published = manifest.published.get(model, {}).get(column.get("published", ""), [])
            paper = published[METRICS[metric]] if published else None
            table.append(Cell(model, column["title"], position, metric, runs, paper))
    by_position = {(cell.model, cell.position): cell for cell in table}
    for cell in table:
        base = by_position.get((manifest.baselines.get(cell.model), cell.position))
        if base is not None and cell.done and base.done:
            cell.gain = _gain(cell, base)
    return table


def _gain(vmp: Cell, base: Cell) -> Gain | None:
    """The paired bootstrap gain of a VMP cell over its baseline's: per dataset, seeds x videos of the difference
    in correctness, on the seeds and videos both were tested on; None without both rows' predictions."""
    top = 5 if vmp.metric == "acc5" else 1
    differences = []
    for dataset in dict.fromkeys(run["dataset"] for run in vmp.runs):
        ours = {run["seed"]: run for run in vmp.runs if run["dataset"] == dataset}
        theirs = {run["seed"]: run for run in base.runs if run["dataset"] == dataset}
        seeds = [seed for seed in ours if seed in theirs]
        files = [RunFolder(run["folder"]).predictions() for seed in seeds for run in (ours[seed], theirs[seed])]
        if not seeds or not all(f.is_file() for f in files):
            return None
        rows = []
        for seed in seeds:
            a = correct_per_video(RunFolder(ours[seed]["folder"]).predictions(), top)
            b = correct_per_video(RunFolder(theirs[seed]["folder"]).predictions(), top)
            videos = sorted(set(a) & set(b))
            rows.append(np.array([a[v] - b[v] for v in videos]))
        differences.append(np.stack(rows))
    return paired_bootstrap_gain(differences)


def markdown(manifest: Manifest, rows: list[dict], table: list[Cell]) -> str:
    titles = [c["title"] for c in manifest.columns]
    header = ["| model | " + " | ".join(titles) + " |", "|---" * (len(titles) + 1) + "|"]
    seeded = any(row["seed"] is not None for row in rows)
    lines = [
        f"# {manifest.title}",
        "",
        "Each cell: ours" + (" (mean ± standard deviation over seeds)" if seeded else "") + " (paper, ours - paper), "
        "test top-1 / top-5 in %; `not run` until the run is done.",
        "",
        *header,
    ]
    for model, title in manifest.rows:
        lines.append(f"| {title} | " + " | ".join(c.text() for c in table if c.model == model) + " |")
    gains = [model for model, _ in manifest.rows if any(c.gain for c in table if c.model == model)]
    if gains:
        lines += ["", GAINS_CAPTION, "", *header]
        for model in gains:
            texts = [c.gain.text() if c.gain else "" for c in table if c.model == model]
            lines.append(f"| {dict(manifest.rows)[model]} | " + " | ".join(texts) + " |")
    tested = Counter(row["tested"] for row in rows if row["tested"])
    footnotes = [f"Tested: {what}, {n} run{'s' * (n > 1)}." for what, n in sorted(tested.items())]
    footnotes += manifest.notes
    lines += ["", *(f"- {note}" for note in footnotes)] if footnotes else []
    return "\n".join(lines) + "\n"


def write_table(manifest: Manifest, out: Path, results: Path) -> tuple[Path, Path]:
    """Write ``<results>/<manifest>.md``, ``.csv`` (one row per run) and ``_cells.csv`` (every number of every
    cell: mean, std, seeds, paper, gain and its interval); returns the first two paths."""
    rows = collect(manifest, out)
    check_same_test_videos(rows)
    rows = [{key: value for key, value in row.items() if key != "test_videos"} for row in rows]
    table = cells(manifest, rows)
    results.mkdir(parents=True, exist_ok=True)
    md, runs = results / f"{manifest.name}.md", results / f"{manifest.name}.csv"
    write_text(md, markdown(manifest, rows, table))
    _write_csv(runs, rows)
    _write_csv(results / f"{manifest.name}_cells.csv", [cell.record() for cell in table])
    return md, runs


def _write_csv(path: Path, records: list[dict]) -> None:
    with atomic_write(path) as partial, partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
