"""The `vmp-lightning` entry point: the project's own commands (`demo`, `prepare`, `check-videos`), else
LightningCLI's (`fit`, `validate`, `test`, `predict`). The command table lives here; nothing imports it back."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from lightning.pytorch.utilities.exceptions import SIGTERMException

from vmp_lightning import demo
from vmp_lightning.backbones.checkpoints import CheckpointFileError, CheckpointMismatchError
from vmp_lightning.cli import build_cli
from vmp_lightning.data.annotations import DatasetLayoutError
from vmp_lightning.data.video import VideoDecodeError
from vmp_lightning.module import NonFiniteLossError


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


PROJECT_COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "demo": demo.main,
    "prepare": prepare,
    "check-videos": check_videos,
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
        DatasetLayoutError,
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
