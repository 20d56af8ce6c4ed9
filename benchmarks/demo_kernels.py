"""The demo's table under different CPU kernels: whether `vmp-lightning demo` prints the README's table wherever
it runs. The demo trains in float32 and pins the AVX2 kernels (oneDNN's and ATen's) unless the environment says
otherwise; this runs the whole demo in a fresh process three times on this machine:

  - as users run it (nothing set: the demo pins AVX2 itself);
  - with AVX2 set outside the process (``ONEDNN_MAX_CPU_ISA=AVX2``, ``ATEN_CPU_CAPABILITY=avx2``);
  - with this CPU's own kernels (``ONEDNN_MAX_CPU_ISA=DEFAULT``, ATen's own pick, e.g. ``avx512``).

Only instruction sets this CPU has can be tried: the claim is for x86-64 CPUs with AVX2, checked against the
kernels of this one. About 3 minutes a run on 2 cores.

    python benchmarks/demo_kernels.py [demo flags]    # writes benchmarks/results/demo_kernels.{json,md}
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import machine_facts, write_results

KERNEL_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
ROW = re.compile(r"^\| (TinyVideoCNN(?: \+ VMPs)?) \| ([\d.]+) \| ([\d.]+) \|$", re.MULTILINE)


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES} | {"WANDB_MODE": "disabled"}


def own_aten_kernels() -> str:
    """ATen's choice on this CPU when nothing is set (``avx512`` on an AVX-512 machine)."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability().lower())"
    return subprocess.run([sys.executable, "-c", probe], env=clean_environment(), capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def cpu_flags() -> str:
    """The instruction sets of this CPU that decide which kernels exist."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return " ".join(flag for flag in wanted if re.search(rf"\b{flag}\b", text))


def run_demo(settings: dict[str, str], extra: list[str]) -> dict[str, tuple[float, float]]:
    """The demo's table rows (top-1, top-5) in a fresh process with ``settings`` in its environment."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-m", "vmp_lightning", "demo", *extra],
            env=clean_environment() | settings,
            cwd=folder,
            capture_output=True,
            text=True,
        )
    if done.returncode:
        raise SystemExit(f"demo_kernels.py: the demo failed with {settings}:\n{done.stderr[-3000:]}")
    return {name: (float(top1), float(top5)) for name, top1, top5 in ROW.findall(done.stdout + done.stderr)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "demo_kernels"))
    args, demo_args = parser.parse_known_args()  # the rest goes to the demo (e.g. --trainer.max_epochs=2)
    own = own_aten_kernels()
    cases = {
        "as users run it (nothing set)": {},
        "AVX2 set outside the process": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
        f"this CPU's own kernels (oneDNN DEFAULT, ATen {own})": {
            "ONEDNN_MAX_CPU_ISA": "DEFAULT",
            "ATEN_CPU_CAPABILITY": own,
        },
    }
    tables = {name: run_demo(settings, demo_args) for name, settings in cases.items()}
    facts = machine_facts(cpu_flags=cpu_flags(), demo_args=demo_args)
    lines = [
        f"`{' '.join(['vmp-lightning demo', *demo_args])}` test top-1 / top-5 (%) under different CPU kernels, "
        f"{facts['cpu']} with {facts['cpu_flags']}, torch {facts['torch']}, {facts['date']}",
        "",
        "| kernels | TinyVideoCNN | TinyVideoCNN + VMPs |",
        "|---|---|---|",
    ]
    for name, rows in tables.items():
        cells = [f"{rows[m][0]:.1f} / {rows[m][1]:.1f}" for m in ("TinyVideoCNN", "TinyVideoCNN + VMPs")]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    first, *others = tables.values()
    lines += ["", f"- the same table with AVX2 pinned in and outside the process: {first == others[0]}"]
    lines += [f"- the same table with this CPU's own kernels: {first == others[1]}"]
    write_results(args.out, {"machine": facts, "cases": cases, "tables": tables}, lines)


if __name__ == "__main__":
    main()
