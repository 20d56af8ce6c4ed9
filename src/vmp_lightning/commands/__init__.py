"""The `vmp-lightning` entry point: the project's own commands (`demo`, `prepare`, `check-videos`, `reproduce`, ...),
else LightningCLI's (`fit`, `validate`, `test`, `predict`). The top of the package: the command table lives here and
nothing in the package imports it (`lint-imports` checks the layers, `.importlinter`)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException

from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.backbones.checkpoints import CheckpointFileError, CheckpointMismatchError
from vmp_lightning.cli import build_cli, split_passthrough
from vmp_lightning.commands import demo
from vmp_lightning.data.annotations import DatasetLayoutError
from vmp_lightning.data.video import VideoDecodeError
from vmp_lightning.harness.manifest import ManifestError
from vmp_lightning.nonfinite import NonFiniteLossError


def prepare(argv: list[str]) -> None:
    """`vmp-lightning prepare <dataset> ...`: cut clips and write annotation files (each dataset's ``PREPARE``)."""
    from vmp_lightning.data.datasets import prepare_commands

    parser = argparse.ArgumentParser(prog="vmp-lightning prepare", description=prepare.__doc__)
    datasets = parser.add_subparsers(dest="dataset", required=True)
    commands = prepare_commands()
    for command in commands.values():
        sub = datasets.add_parser(command.name, help=command.help)
        command.add_arguments(sub)
        sub.add_argument("--short-side", type=int, default=256, help="resize the short side (0 keeps the size)")
        sub.add_argument("--gop", type=int, default=8, help="key-frame interval in frames")
        sub.add_argument("--workers", type=int, default=1, help="processes cutting clips at once")
    args = parser.parse_args(argv)
    options = {"short_side": args.short_side or None, "gop": args.gop, "workers": args.workers}
    report = commands[args.dataset].run(args, options)
    print(report.summary())
    if report.problems:
        sys.exit(1)


def check_videos(argv: list[str]) -> None:
    """`vmp-lightning check-videos [--config ...] [--data.* ...] [--full] [--workers N] [--out FILE.csv]`: open
    every video of the configured dataset and decode its first and last frame (with --full: every frame, counting them);
    print the problems (missing, empty, unreadable, too short, damaged) and the headers that claim more frames than
    there are, and write every row to a CSV. Exits with 1 when there is a problem."""
    from vmp_lightning.data.check import PROBLEMS, check_datamodule, write_report

    parser = argparse.ArgumentParser(prog="vmp-lightning check-videos", description=check_videos.__doc__)
    parser.add_argument("--out", default="video_check.csv", help="CSV file for all rows")
    parser.add_argument("--full", action="store_true", help="decode every frame (true count, first bad frame)")
    parser.add_argument("--workers", type=int, default=1, help="processes checking videos at once")
    args, rest = parser.parse_known_args(argv)
    # Missing files are to be listed, not to stop the check.
    cli = build_cli([*rest, "--data.init_args.on_bad_video=skip", "--trainer.logger=false"], run=False)
    results = check_datamodule(cli.datamodule, full=args.full, workers=args.workers)
    print(write_report(results, args.out))
    if any(r.status in PROBLEMS for r in results):
        sys.exit(1)


def reproduce(argv: list[str]) -> None:
    """`vmp-lightning reproduce <manifest> [--only PATTERNS] [--data-root DIR] [--ckpt-root DIR] [--devices N]
    [--precision P] [--smoke] [--dry-run] [-- extra fit flags]`: fit, then test, every run of an experiment
    manifest (experiments/table2.yaml), skipping finished runs and resuming interrupted ones; then write its table.
    Exits with 1 when a run failed."""
    from vmp_lightning.harness.manifest import load_manifest
    from vmp_lightning.harness.reproduce import Options
    from vmp_lightning.harness.reproduce import reproduce as run_all
    from vmp_lightning.harness.table import write_table

    parser = argparse.ArgumentParser(prog="vmp-lightning reproduce", description=reproduce.__doc__)
    parser.add_argument("manifest")
    parser.add_argument("--only", default=None, help="comma-separated parts of run names (timesformer,hmdb51_s1)")
    parser.add_argument("--out", default="experiments/runs", help="where the run folders go")
    parser.add_argument("--results", default="experiments/results", help="where the table goes")
    parser.add_argument("--data-root", default=None, help="folder holding each dataset's folder")
    parser.add_argument("--ckpt-root", default=None, help="folder holding the pretrained checkpoints")
    parser.add_argument("--devices", default=None, help="trainer.devices for every run (>1: DDP subprocesses)")
    parser.add_argument("--precision", default=None, help="trainer.precision for every run")
    parser.add_argument("--smoke", action="store_true", help="synthetic videos, tiny models, one short epoch")
    parser.add_argument("--dry-run", action="store_true", help="print each run's command, run nothing")
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    manifest = load_manifest(args.manifest)
    out = Path(args.out) / ("smoke" if args.smoke else "")
    options = Options(
        out=out,
        data_root=Path(args.data_root) if args.data_root else None,
        ckpt_root=Path(args.ckpt_root) if args.ckpt_root else None,
        devices=args.devices,
        precision=args.precision,
        smoke=args.smoke,
        dry_run=args.dry_run,
        extra=tuple(extra),
        in_process=main,
    )
    status = run_all(manifest, options, args.only)
    if not args.dry_run:
        results = Path(args.results) / ("smoke" if args.smoke else "")
        md, _ = write_table(manifest, out, results)
        print(md.read_text())
        print(f"table written to {md} and {md.with_suffix('.csv')}")
    if any(state.startswith("failed") for state in status.values()):
        sys.exit(1)


def table(argv: list[str]) -> None:
    """`vmp-lightning table <manifest> [--out experiments/runs] [--results experiments/results]`: the runs' test
    metrics beside the paper's, laid out like the paper's table (Markdown and CSV)."""
    from vmp_lightning.harness.manifest import load_manifest
    from vmp_lightning.harness.table import write_table

    parser = argparse.ArgumentParser(prog="vmp-lightning table", description=table.__doc__)
    parser.add_argument("manifest")
    parser.add_argument("--out", default="experiments/runs", help="the run folders")
    parser.add_argument("--results", default="experiments/results")
    args = parser.parse_args(argv)
    md, csv_path = write_table(load_manifest(args.manifest), Path(args.out), Path(args.results))
    print(md.read_text())
    print(f"table written to {md} and {csv_path}")


def sweep(argv: list[str]) -> None:
    """`vmp-lightning sweep <sweep.yaml> [--max-trials N] [--out DIR] [--seed S] [-- extra fit flags]`: run a W&B
    sweep file offline (grid and random as W&B draws them, bayes through Optuna), each trial a normal run in its
    own folder; prints and writes (summary.csv) the table of trials, parameters and metric."""
    from vmp_lightning.harness.sweep import run_sweep, summary_table

    parser = argparse.ArgumentParser(prog="vmp-lightning sweep", description=sweep.__doc__)
    parser.add_argument("sweep")
    parser.add_argument("--max-trials", type=int, default=None, help="stop after N trials (random/bayes need it)")
    parser.add_argument("--out", default="experiments/sweeps/runs", help="where the trial folders go")
    parser.add_argument("--seed", type=int, default=0, help="of the random / bayes draws")
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    rows = run_sweep(args.sweep, args.out, args.max_trials, tuple(extra), args.seed, in_process=main)
    print(summary_table(rows))
    if rows:
        print(f"summary written to {Path(rows[0]['folder']).parent / 'summary.csv'}")


ANALYSIS_COMMANDS = ("visualize", "pn-compare", "weight-similarity", "per-class", "compare-runs")


def _analysis(name: str, argv: list[str]) -> None:
    """The analysis commands live in `vmp_lightning.commands.analysis` (matplotlib is imported only for them)."""
    from vmp_lightning.commands.analysis import COMMANDS

    COMMANDS[name](argv)


PROJECT_COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "demo": demo.main,
    "prepare": prepare,
    "check-videos": check_videos,
    "reproduce": reproduce,
    "table": table,
    "sweep": sweep,
    **{name: (lambda argv, name=name: _analysis(name, argv)) for name in ANALYSIS_COMMANDS},
}


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    try:
        if argv and argv[0] in PROJECT_COMMANDS:
            PROJECT_COMMANDS[argv[0]](argv[1:])
            return
        build_cli(None if args is None else argv)  # None: LightningCLI reads sys.argv itself
    except SIGTERMException:  # preempted: the checkpoint is saved (LatestCheckpoint said where); not a success
        sys.exit(128 + signal.SIGTERM)
    except (
        AnalysisError,
        DatasetLayoutError,
        ManifestError,
        VideoDecodeError,
        CheckpointFileError,
        CheckpointMismatchError,
        NonFiniteLossError,
    ) as error:
        # Bad data, files or training are the user's to fix: say what is wrong, without a traceback through library
        # internals.
        sys.stderr.write(f"vmp-lightning: error: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
