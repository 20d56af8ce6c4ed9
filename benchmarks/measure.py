"""Measurement helpers shared by the benchmarks: median step time, memory kept for backward, peak RSS increase."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def time_step(step: Callable[[], None], repeats: int) -> float:
    """Median seconds of ``step`` over ``repeats`` runs after one warm-up run."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_for_backward_bytes(step: Callable[[], None]) -> int:
    """Bytes autograd keeps between forward and backward during ``step``, counting each storage once."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_increase(step: Callable[[], None]) -> int:
    """Peak resident memory during ``step`` minus the resident memory just before it (Linux: the peak is reset
    through /proc/self/clear_refs). Run it where glibc returns large blocks to the OS (MALLOC_MMAP_THRESHOLD_)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - before) * 1024


def peak_rss_in_child(script: str, *args: str) -> int:
    """Run ``script --peak-rss-of ARGS`` in a fresh process whose glibc returns every large block to the OS
    (otherwise freed blocks of up to 32 MiB stay in the heap and hide from the measurement; that setting slows
    steps down, so times are measured in the parent without it); the child prints the bytes."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, script, "--peak-rss-of", *args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return int(out.stdout.strip().splitlines()[-1])


def time_steps_interleaved(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each step, measured round-robin (A B C A B C ...) after one warm-up each, so that slow
    drifts of a shared machine hit every variant alike and their ratios stay meaningful."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def machine_facts(**extra: object) -> dict:
    """What a result depends on: the CPU, its threads, torch, the date (and what a benchmark adds)."""
    import platform

    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **extra,
        "date": time.strftime("%Y-%m-%d"),
    }


def write_results(out: str | Path, record: dict, lines: list[str]) -> None:
    """``<out>.json`` (the numbers) and ``<out>.md`` (the table the README quotes), and print the table."""
    import json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
