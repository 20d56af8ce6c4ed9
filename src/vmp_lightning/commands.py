"""The project's own subcommands beside LightningCLI's: `prepare` and `check-videos` (and `demo`, see demo.py)."""

from __future__ import annotations

import argparse
import sys


def prepare(argv: list[str]) -> None:
    """`vmp-lightning prepare hmdb51|finegym|mpii-cooking2 ...`: cut clips and write our annotation files."""
    from vmp_lightning.data.prepare import prepare_finegym, prepare_hmdb51, prepare_mpii_cooking2

    parser = argparse.ArgumentParser(prog="vmp-lightning prepare", description=prepare.__doc__)
    datasets = parser.add_subparsers(dest="dataset", required=True)
    hmdb = datasets.add_parser("hmdb51", help="re-encode all videos densely key-framed, rewrite the split files")
    hmdb.add_argument("--root", required=True, help="HMDB-51 root with videos/ and splits/")
    hmdb.add_argument("--out", required=True, help="new HMDB-51 root")
    gym = datasets.add_parser("finegym", help="cut sub-action clips from the raw videos")
    gym.add_argument("--annotation", required=True, help="finegym_annotation_info_v1.1.json")
    gym.add_argument("--videos", required=True, help="folder of raw videos <youtube id>.mp4")
    gym.add_argument("--root", required=True, help="FineGym root with annotations/; clips go to root/subactions")
    gym.add_argument("--subset", default="gym99", choices=["gym99", "gym288"])
    mpii = datasets.add_parser("mpii-cooking2", help="cut each annotated activity into its own clip")
    mpii.add_argument(
        "--root", required=True, help="MPII Cooking 2 root (annotation .mat, experimentalSetup/, videos/)"
    )
    mpii.add_argument("--out", required=True, help="folder for clips/, train.txt, val.txt, test.txt, classes.txt")
    mpii.add_argument("--camera", default="cam-002")
    for sub in (hmdb, gym, mpii):
        sub.add_argument("--short-side", type=int, default=256, help="resize the short side (0 keeps the size)")
        sub.add_argument("--gop", type=int, default=8, help="key-frame interval in frames")
    args = parser.parse_args(argv)
    options = {"short_side": args.short_side or None, "gop": args.gop}
    if args.dataset == "hmdb51":
        report = prepare_hmdb51(args.root, args.out, **options)
    elif args.dataset == "finegym":
        report = prepare_finegym(args.annotation, args.videos, args.root, args.subset, **options)
    else:
        report = prepare_mpii_cooking2(args.root, args.out, args.camera, **options)
    print(report.summary())
    if report.problems:
        sys.exit(1)


def check_videos(argv: list[str]) -> None:
    """`vmp-lightning check-videos [--config ...] [--data.* ...] [--out video_check.csv]`: decode every video of
    the configured dataset; print the problems (missing, empty, unreadable, too short, fewer frames than the header
    claims) and write every row to a CSV. Exits with 1 when there is a problem."""
    from vmp_lightning.cli import build_cli
    from vmp_lightning.data.check import check_datamodule, write_report

    parser = argparse.ArgumentParser(prog="vmp-lightning check-videos", description=check_videos.__doc__)
    parser.add_argument("--out", default="video_check.csv", help="CSV file for all rows")
    args, rest = parser.parse_known_args(argv)
    # Missing files are to be listed, not to stop the check.
    cli = build_cli([*rest, "--data.init_args.on_bad_video=skip", "--trainer.logger=false"], run=False)
    results = check_datamodule(cli.datamodule)
    print(write_report(results, args.out))
    if any(r.status != "ok" for r in results):
        sys.exit(1)
