"""Runs that survive being stopped: for 0, 2 and 4 loader workers, a tiny VMP fit (3 epochs x 6 batches, seed 7)
is stopped before batch 3 of epoch 1 by SIGKILL (a crash: resumed from the end of epoch 0), SIGTERM to its whole
process group (as SLURM preempts) or Ctrl-C to its process group (as a terminal sends it), resumed from
``last.ckpt``, and compared with the uninterrupted fit of the same worker count: the largest weight difference
(0 = bit-identical), the exit code of the stop and whether the resumed fit trained each batch exactly once.

    python benchmarks/resume_matrix.py      # writes benchmarks/results/resume_matrix.{json,md}
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers import TINY_SPEC, fit_args, read_trace  # noqa: E402  (the tests' tiny dataset and callbacks)
from measure import machine_facts, write_results  # noqa: E402

STOPS = {
    "SIGKILL": ("SIGKILL", False),
    "SIGTERM to the group": ("SIGTERM", True),
    "Ctrl-C to the group": ("SIGINT", True),
}
AGAIN = "no: batches 0-2 again, from the end of epoch 0 (SIGKILL saves nothing)"


def fit(root: str, folder: Path, workers: int, *extra: str, group: bool = False) -> subprocess.CompletedProcess:
    args = fit_args(root, folder, "--trainer.max_epochs=3", "--model.vmp=true", "--seed_everything=7")
    args += [f"--data.init_args.num_workers={workers}", "--trainer.callbacks+=helpers.BatchTrace", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "TRACE_FILE": str(folder / "trace.jsonl")}
    command = [sys.executable, "-m", "vmp_lightning", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, start_new_session=group, timeout=600)


def last_checkpoint(folder: Path) -> Path:
    (run,) = (folder / "runs").iterdir()
    return run / "checkpoints" / "last.ckpt"


def max_difference(a: Path, b: Path) -> float:
    first, second = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b))
    return max((first[k].double() - second[k].double()).abs().max().item() for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "resume_matrix"))
    args = parser.parse_args()
    from vmp_lightning.data import SyntheticMotionSpec, generate

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = str(Path(scratch) / "data")
        generate(SyntheticMotionSpec(**TINY_SPEC), root)
        for workers in args.workers:
            whole = Path(scratch) / f"whole{workers}"
            assert fit(root, whole, workers).returncode == 0
            for name, (signal, group) in STOPS.items():
                folder = Path(scratch) / f"{signal}{workers}"
                stopper = ["--trainer.callbacks+=helpers.SignalAt", "--trainer.callbacks.epoch=1"]
                stopper += ["--trainer.callbacks.batch=3", f"--trainer.callbacks.signal={signal}"]
                stopper += [f"--trainer.callbacks.group={str(group).lower()}"]
                stopped = fit(root, folder, workers, *stopper, group=group)
                resumed = fit(root, folder, workers, f"--ckpt_path={last_checkpoint(folder)}")
                once = read_trace(folder / "trace.jsonl") == read_trace(whole / "trace.jsonl")
                rows.append(
                    {
                        "workers": workers,
                        "stop": name,
                        "stop_exit": stopped.returncode,
                        "resume_exit": resumed.returncode,
                        "max_weight_difference": max_difference(last_checkpoint(folder), last_checkpoint(whole)),
                        "each_batch_once": once,
                    }
                )
                print(rows[-1], flush=True)
    lines = [
        "| loader workers | stopped by | exit | resumed | max weight difference | each batch trained once |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        once = "yes" if r["each_batch_once"] else AGAIN
        lines.append(
            f"| {r['workers']} | {r['stop']} | {r['stop_exit']} | {r['resume_exit']} | "
            f"{r['max_weight_difference']:.3g} | {once} |"
        )
    write_results(args.out, {"machine": machine_facts(), "rows": rows}, lines)


if __name__ == "__main__":
    main()
