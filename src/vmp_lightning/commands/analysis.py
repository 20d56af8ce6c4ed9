"""Argument parsing of the analysis commands (`vmp-lightning visualize | pn-compare | weight-similarity |
per-class | compare-runs`); the work is in `vmp_lightning.analysis`, one file per tool."""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser, Namespace

from vmp_lightning import analysis as tools
from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.analysis.published import PUBLISHED_MN
from vmp_lightning.parsing import command_parser, split_passthrough


def _add_pn_source(parser: ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--ckpt", help="a vmp-lightning checkpoint: its trained prompt layer(s)")
    source.add_argument("--published", choices=sorted(PUBLISHED_MN), help="the (m, n) the project site publishes")
    source.add_argument("--mn", nargs=2, type=float, metavar=("M", "N"), help="fixed (m, n) of the learnable sigmoid")


def _clip_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("video", nargs="?", help="a video file (or --item)")
    parser.add_argument(
        "--item",
        nargs=2,
        metavar=("SPLIT", "INDEX"),
        help="a dataset item instead, exactly as the loader gives it; the data settings follow `--` "
        "(e.g. -- --config configs/data/hmdb51.yaml --data.init_args.root /data/hmdb51)",
    )
    parser.add_argument("--stride", type=int, default=1, help="frames between the sampled frames")
    parser.add_argument("--start", type=int, default=None, help="first frame (default: the clip is centred)")
    parser.add_argument("--size", type=int, default=None, help="resize the short side (default: as decoded)")
    parser.add_argument("--out", default="analysis", help="folder for the images")


def visualize(argv: list[str]) -> None:
    """`vmp-lightning visualize VIDEO [--ckpt C | --published finegym | --mn M N] [--frames 8]`: a grid of the
    sampled frames, the frame differences, the attention maps and the prompts over all steps, a GIF of the prompts,
    the PN curve with a and b marked, optionally 3D surfaces of D and A."""
    parser = command_parser("visualize", visualize.__doc__)
    _clip_arguments(parser)
    _add_pn_source(parser)
    parser.add_argument("--frames", type=int, default=8, help="T: prompts to show (T+1 frames are read)")
    parser.add_argument("--surfaces", action="store_true", help="also 3D surface plots of D and A")
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    layers = _layers(args)
    clip, title = _clip(args, args.frames, extra)
    tools.visualize(clip, layers, args.out, title=title, surfaces=args.surfaces)
    print(f"images written to {args.out}/ ({', '.join(f'{s}_grid.png' for s in layers)}, pn_curve.png, GIFs)")


def _clip(args: Namespace, num_frames: int, data_args: list[str]):
    """The uint8 clip of T prompts (T+1 frames) to show and its title: a video file's frames, or a dataset item as
    the loader makes it for a VMP model of T frames."""
    if args.item is None:
        if args.video is None:
            raise AnalysisError("give a video file or --item SPLIT INDEX")
        from vmp_lightning.model import frames_per_clip

        frames = frames_per_clip(num_frames, vmp=True)
        return tools.read_clip(args.video, frames, args.stride, args.start, args.size), Path(args.video).name
    from vmp_lightning.cli import build_datamodule

    split, index = args.item[0], int(args.item[1])
    datamodule = build_datamodule([*data_args, f"--model.init_args.num_frames={num_frames}", "--model.vmp=true"])
    datamodule.setup("fit" if split in ("train", "val") else "test")
    records = datamodule.records[split]
    if not 0 <= index < len(records):
        raise AnalysisError(f"--item {split} {index}: the {split} split holds {len(records)} videos")
    item = datamodule.dataset(split)[index]
    return item["video"], f"{split} {index}: {item['video_id']}"


def _layers(args: Namespace) -> dict:
    if args.ckpt:
        return tools.prompt_layers_of_checkpoint(args.ckpt)
    m, n = args.mn if args.mn else PUBLISHED_MN[args.published or "finegym"]
    return {"input": tools.sigmoid_layer(m, n)}


def pn_compare(argv: list[str]) -> None:
    """`vmp-lightning pn-compare VIDEO [--start F] [--gamma 0.5 --maxexp-eta 10 --sigme-eta 20 --asinhe-gamma 10
    --mn M N]`: one frame pair through Gamma, MaxExp, SigmE, AsinhE and the learnable sigmoid, side by side."""
    parser = command_parser("pn-compare", pn_compare.__doc__)
    _clip_arguments(parser)
    parser.add_argument("--gamma", type=float, default=0.5)
    parser.add_argument("--maxexp-eta", type=float, default=10.0)
    parser.add_argument("--sigme-eta", type=float, default=20.0)
    parser.add_argument("--asinhe-gamma", type=float, default=10.0)
    parser.add_argument("--mn", nargs=2, type=float, default=list(PUBLISHED_MN["finegym"]), metavar=("M", "N"))
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    pns = tools.baseline_pns(args.gamma, args.maxexp_eta, args.sigme_eta, args.asinhe_gamma, *args.mn)
    tools.pn_compare(_clip(args, 1, extra)[0], pns, args.out)
    print(f"images written to {args.out}/ (pn_compare.png, pn_curves.png)")


def weight_similarity(argv: list[str]) -> None:
    """`vmp-lightning weight-similarity A.ckpt B.ckpt [C.ckpt] [--labels a b c]`: per-layer cosine similarity and
    relative change of the weights (prompt layer set aside), as a plot and a CSV."""
    parser = command_parser("weight-similarity", weight_similarity.__doc__)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--labels", nargs="+", default=None)
    parser.add_argument("--out", default="analysis")
    args = parser.parse_args(argv)
    layers = tools.weight_similarity(args.checkpoints, args.out, args.labels)
    for pair in layers[0].cosine:
        lowest = min(layers, key=lambda layer: layer.cosine[pair])
        print(f"{pair}: {len(layers)} layers, lowest cosine {lowest.cosine[pair]:.4f} ({lowest.name})")
    print(f"written to {args.out}/weight_similarity.png and .csv")


def per_class(argv: list[str]) -> None:
    """`vmp-lightning per-class BASE_predictions.csv VMP_predictions.csv`: per-class accuracy of two prediction
    dumps of the same test set, the sorted difference as a bar chart, a CSV, and the confusions that changed."""
    parser = command_parser("per-class", per_class.__doc__)
    parser.add_argument("base")
    parser.add_argument("other")
    parser.add_argument("--top", type=int, default=10, help="confusions to list")
    parser.add_argument("--out", default="analysis")
    args = parser.parse_args(argv)
    rows = tools.per_class(args.base, args.other, args.out, args.top)
    better = sum(r["difference"] > 0 for r in rows)
    worse = sum(r["difference"] < 0 for r in rows)
    print(f"{len(rows)} classes: {better} better, {worse} worse; written to {args.out}/per_class.png and .csv")


def compare_runs(argv: list[str]) -> None:
    """`vmp-lightning compare-runs MANIFEST.yaml|summary.csv [--x SETTING] [--metric acc1]`: accuracy against the
    swept setting, one point per seed or trial, as a plot and a table."""
    parser = command_parser("compare-runs", compare_runs.__doc__)
    parser.add_argument("source")
    parser.add_argument("--x", default=None, help="the setting (manifest) or column (CSV) on the x axis")
    parser.add_argument("--metric", default="acc1", help="acc1 / acc5 (manifest) or a metric column (CSV)")
    parser.add_argument("--runs", default="experiments/runs", help="the run folders of a manifest")
    parser.add_argument("--out", default="analysis")
    args = parser.parse_args(argv)
    points = tools.compare_runs(args.source, args.out, args.x, args.metric, args.runs)
    print(f"{len(points)} points; written to {args.out}/compare_runs.png and .csv")


COMMANDS = {
    "visualize": visualize,
    "pn-compare": pn_compare,
    "weight-similarity": weight_similarity,
    "per-class": per_class,
    "compare-runs": compare_runs,
}
__all__ = ["COMMANDS", "AnalysisError"]
