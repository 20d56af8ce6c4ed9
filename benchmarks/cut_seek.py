"""FineGym's cuts sit 40-70 minutes into the broadcasts: what one `cut_clip` costs near the start and near the end
of a 30-minute 720p video, against decoding from frame 0 to the same place (what the cut did before it seeked).
Goal: a cut near the end <= 2x one near the start.

The video is made in seconds: one 10-second GOP is encoded once and its packets are remuxed 180 times with
shifted timestamps.

    python benchmarks/cut_seek.py           # writes benchmarks/results/cut_seek.{json,md}
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from measure import machine_facts, write_results
from vmp_lightning.data import write_video
from vmp_lightning.data.prepare import cut_clip

FPS, GOP_SECONDS, MINUTES, CLIP = 25, 10, 30, 64


def long_video(folder: Path) -> Path:
    """``MINUTES`` of 1280 x 720 video: one GOP of moving blocks, repeated by remuxing its packets."""
    import av

    gop = GOP_SECONDS * FPS
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8).repeat(80, axis=0).repeat(80, axis=1)
    frames = np.stack([np.roll(base, 4 * t, axis=1) for t in range(gop)])
    one = folder / "gop.mp4"
    write_video(one, frames, fps=FPS, gop=gop)
    out = folder / "long.mp4"
    with av.open(str(one)) as source, av.open(str(out), "w") as target:
        stream_in = source.streams.video[0]
        stream_out = target.add_stream_from_template(stream_in)
        packets = [p for p in source.demux(stream_in) if p.size]
        span = gop * round(1 / (stream_in.time_base * FPS))  # one GOP in the stream's time base
        for copy in range(MINUTES * 60 // GOP_SECONDS):
            for packet in packets:
                shifted = av.Packet(bytes(packet))
                shifted.pts, shifted.dts = packet.pts + copy * span, packet.dts + copy * span
                shifted.is_keyframe, shifted.time_base = packet.is_keyframe, packet.time_base
                shifted.stream = stream_out
                target.mux(shifted)
    return out


def decode_from_start(path: Path, last: int) -> None:
    import av

    with av.open(str(path)) as container:
        for index, _ in enumerate(container.decode(video=0)):
            if index >= last:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cut_seek"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        video = long_video(folder)
        total = MINUTES * 60 * FPS
        cut_clip(video, folder / "warm-up.mp4", 0, 7, short_side=256)  # imports and first calls, not timed
        seconds = {}
        for name, start in [("near the start", 5 * FPS), ("near the end", total - 5 * FPS - CLIP)]:
            began = time.perf_counter()
            cut_clip(video, folder / f"{start}.mp4", start, start + CLIP - 1, short_side=256)
            seconds[f"cut {CLIP} frames {name} (frame {start})"] = time.perf_counter() - began
        began = time.perf_counter()
        decode_from_start(video, total - 5 * FPS)
        seconds["decode from frame 0 to the end cut (before)"] = time.perf_counter() - began
    start_cut, end_cut, before = seconds.values()
    lines = ["| what | seconds |", "|---|---:|"] + [f"| {name} | {value:.2f} |" for name, value in seconds.items()]
    lines.append(f"\nnear the end / near the start: {end_cut / start_cut:.2f}x (goal <= 2x)")
    lines.append(f"decoding from frame 0 / the end cut: {before / end_cut:.0f}x")
    record = {"machine": machine_facts(video=f"{MINUTES} min 1280x720 {FPS} fps, GOP {GOP_SECONDS} s"), **seconds}
    write_results(args.out, record, lines)


if __name__ == "__main__":
    main()
