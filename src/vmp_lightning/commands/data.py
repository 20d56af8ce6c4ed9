"""`vmp-lightning prepare` and `vmp-lightning check-videos`: a dataset made ready, and every video of it checked."""

from __future__ import annotations

import sys
from importlib import import_module

from vmp_lightning.data.datasets import PREPARE_INDEX
from vmp_lightning.parsing import command_parser


def prepare(argv: list[str]) -> None:
    """Cut a dataset's clips and write its annotation files (each dataset module's ``PREPARE``). Only the chosen
    dataset's module is imported."""
    parser = command_parser("prepare", prepare.__doc__)
    subcommands = parser.add_subcommands(dest="dataset")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in PREPARE_INDEX.items():
        sub = command_parser(f"prepare {name}", summary)
        if name == chosen:
            command = import_module(f"vmp_lightning.data.datasets.{module}").PREPARE
            command.add_arguments(sub)
            sub.add_argument("--short-side", type=int, default=256, help="resize the short side (0 keeps the size)")
            sub.add_argument("--gop", type=int, default=8, help="key-frame interval in frames")
            sub.add_argument("--workers", type=int, default=1, help="processes cutting clips at once")
        subcommands.add_subcommand(name, sub, help=summary)
    config = parser.parse_args(argv)
    args = config[config.dataset]
    options = {"short_side": args.short_side or None, "gop": args.gop, "workers": args.workers}
    report = command.run(args, options)
    print(report.summary())
    print(f"next: {command.next_step(args)}")
    if report.problems:
        sys.exit(1)


def check_videos(argv: list[str]) -> None:
    """Open every video of the configured dataset (the data settings as for `fit`: ``--config``, ``--data.*``)
    and decode its first and last frame (with --full: every frame, counting them); print the problems (missing,
    empty, unreadable, damaged), the headers that claim more frames than there are and the videos shorter than a
    clip (filled, not dropped), and write every row to a CSV. Exits with 1 when there is a problem."""
    own, rest = _own_flags(argv)
    parser = command_parser("check-videos", check_videos.__doc__)
    parser.add_argument("--out", default="video_check.csv", help="CSV file for all rows")
    parser.add_argument("--full", action="store_true", help="decode every frame (true count, first bad frame)")
    parser.add_argument("--workers", type=int, default=1, help="processes checking videos at once")
    if {"-h", "--help"} & set(rest):
        parser.print_help()
        print("\nThe data settings are fit's: vmp-lightning fit --help lists them.")
        return
    args = parser.parse_args(own)
    from vmp_lightning.cli import build_datamodule
    from vmp_lightning.data.check import PROBLEMS, check_datamodule, write_report

    # Missing files are to be listed, not to stop the check.
    datamodule = build_datamodule([*rest, "--data.init_args.on_bad_video=skip"])
    results = check_datamodule(datamodule, full=args.full, workers=args.workers)
    print(write_report(results, args.out))
    if any(r.status in PROBLEMS for r in results):
        sys.exit(1)


def _own_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """check-videos' own flags (``--out F``, ``--workers N``, ``--full``) and the data settings, which go to the CLI."""
    own, rest, index = [], [], 0
    while index < len(argv):
        flag = argv[index].split("=")[0]
        if flag == "--full" or (flag in ("--out", "--workers") and "=" in argv[index]):
            own.append(argv[index])
        elif flag in ("--out", "--workers"):
            own += argv[index : index + 2]
            index += 1
        else:
            rest.append(argv[index])
        index += 1
    return own, rest
