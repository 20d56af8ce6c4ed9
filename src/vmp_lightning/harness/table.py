"""`vmp-lightning table <manifest>`: the runs' test metrics laid out like the paper's table, beside its numbers."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from vmp_lightning.errors import UserError
from vmp_lightning.harness.manifest import Manifest, ManifestError
from vmp_lightning.harness.reproduce import run_folder, run_metrics

METRICS = {"acc1": 0, "acc5": 1}  # index into a run's paper (top-1, top-5)


class DifferentTestVideos(UserError, ValueError):
    """Two rows of a column were tested on different videos: their numbers are not comparable."""


def tested_videos(metrics_path: str | Path) -> frozenset[str] | None:
    """The video ids a run was tested on (its ``test_predictions.csv``, beside its ``metrics.json``)."""
    path = Path(metrics_path).parent / "test_predictions.csv"
    if not path.is_file():
        return None
    with path.open() as handle:
        return frozenset(row["video_id"] for row in csv.DictReader(handle))


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


def _cell(values: list[dict], metric: str, published: float | None = None) -> str:
    """``ours (paper, diff)`` of one run or the mean of several (splits, seeds); ``not run`` until all are done.
    ``published``: the paper's own number for the cell (its printed mean), instead of the mean of its runs'."""
    if any(v[metric] is None for v in values):
        done = sum(v[metric] is not None for v in values)
        return "not run" if not done else f"{done}/{len(values)} runs"
    ours = sum(v[metric] for v in values) / len(values)
    papers = [v[f"paper_{metric}"] for v in values]
    text = f"{ours:.1f}"
    if len(values) == 1 and values[0]["wandb_url"]:
        text = f"[{text}]({values[0]['wandb_url']})"
    if published is not None or all(p is not None for p in papers):
        paper = published if published is not None else sum(papers) / len(papers)
        text += f" ({paper:.1f}, {ours - paper:+.1f})"
    return text


def markdown(manifest: Manifest, rows: list[dict]) -> str:
    by_key: dict[tuple[str, str], list[dict]] = {}
    for row in rows:  # with seeds: a cell is the mean over them
        by_key.setdefault((row["model"], row["dataset"]), []).append(row)
    lines = [
        f"# {manifest.title}",
        "",
        "Each cell: ours (paper, ours - paper), test top-1 / top-5 in %; `not run` until the run is done.",
        "",
        "| model | " + " | ".join(c["title"] for c in manifest.columns) + " |",
        "|---" * (len(manifest.columns) + 1) + "|",
    ]
    for model, title in manifest.rows:
        cells = []
        for column in manifest.columns:
            datasets = column.get("mean_of") or [column.get("dataset")]
            try:
                values = [row for d in datasets for row in by_key[(model, d)]]
            except KeyError as error:
                raise ManifestError(f"{manifest.path}: column {column['title']!r} names {error}") from None
            metric = column.get("metric", "acc1")
            published = manifest.published.get(model, {}).get(column.get("published", ""), [])
            cells.append(_cell(values, metric, published[METRICS[metric]] if published else None))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    tested = Counter(row["tested"] for row in rows if row["tested"])
    footnotes = [f"Tested: {what}, {n} run{'s' * (n > 1)}." for what, n in sorted(tested.items())]
    footnotes += manifest.notes
    lines += ["", *(f"- {note}" for note in footnotes)] if footnotes else []
    return "\n".join(lines) + "\n"


def write_table(manifest: Manifest, out: Path, results: Path) -> tuple[Path, Path]:
    """Write ``<results>/<manifest>.md`` and ``.csv``; returns both paths."""
    rows = collect(manifest, out)
    check_same_test_videos(rows)
    rows = [{key: value for key, value in row.items() if key != "test_videos"} for row in rows]
    results.mkdir(parents=True, exist_ok=True)
    md, table = results / f"{manifest.name}.md", results / f"{manifest.name}.csv"
    md.write_text(markdown(manifest, rows))
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return md, table
