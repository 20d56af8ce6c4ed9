"""Training-step time and peak GPU memory of the paper's backbones with and without VMPs, side by side on one GPU.

SlowFast R50 8x8 (32 fast frames at 224, each VMP placement), X3D-S (13 frames at 160) and TimeSformer-B/16
(8 frames at 224); batch 8, bf16 autocast, SGD step; variants timed round-robin (each step ends in a synchronise),
peak memory from ``torch.cuda.max_memory_allocated`` per variant. Goal: VMP step <= 1.03x the backbone's time,
<= 1.05x its memory. Writes ``benchmarks/results/gpu_step.{json,md}`` with the card's name.

Then the prompt layer alone (fp32 forward + backward at SlowFast's fast-pathway input, 8 x 3 x 33 x 224 x 224): the
bytes it must move at the least (the clip read, maps and prompts written; upstream gradients, clip and maps read,
clip gradient written) over its time, as a fraction of this card's own copy bandwidth (a 2 GiB device-to-device
copy). Goal: >= 70 %.

A GPU machine brings its own torch, lightning, timm, torchmetrics and einops and may have no network: the rest
(``CARRIED``: pytorchvideo and what its models import) travels beside the repository as pure-Python wheels in
``.gpu-wheels/``, made here by ``make gpu-wheels`` and unpacked by this script where it runs.

    python benchmarks/gpu_step.py [--repeats 10] [--only slowfast,x3d,timesformer]   # PYTHONPATH=src:benchmarks
    python benchmarks/gpu_step.py --smoke      # tiny sizes on whatever device there is: checks the script runs
    python benchmarks/gpu_step.py --make-wheels   # where the registries are reachable: fills .gpu-wheels/
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch
from torch import nn

from measure import time_steps_interleaved
from vmp_lightning.backbones import X3D, SlowFast, TimeSformer
from vmp_lightning.model import PromptedModel

CLASSES = 51
CARRIED = ("pytorchvideo", "fvcore", "iopath", "portalocker", "tabulate", "termcolor")  # imported by SlowFast/X3D
WHEELS = Path(__file__).resolve().parent.parent / ".gpu-wheels"
CARRY_LIMIT = 64 * 2**20  # what the device machine takes beside the repository
CASES = {  # name -> (backbone factory, frames, crop, VMP variants)
    "slowfast": (lambda k: SlowFast(k), 32, 224, {"slow": ["slow"], "fast": ["fast"], "both": ["slow", "fast"]}),
    "x3d": (lambda k: X3D(k, size="s"), 13, 160, {"input": None}),
    "timesformer": (lambda k: TimeSformer(k), 8, 224, {"input": None}),
}
SMOKE = {  # the same variants at sizes a CPU runs in seconds
    "slowfast": (lambda k: SlowFast(k, width=8), 8, 32, CASES["slowfast"][3]),
    "x3d": (lambda k: X3D(k, size="s", width_factor=1.0, depth_factor=0.5, head_dim=32), 4, 32, {"input": None}),
    "timesformer": (
        lambda k: TimeSformer(k, num_frames=4, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4),
        4,
        32,
        {"input": None},
    ),
}


def make_wheels(folder: Path) -> None:
    """Pure-Python wheels of ``CARRIED`` at this environment's versions: the GPU machine runs what was tested here."""
    for old in folder.glob("*.whl"):
        old.unlink()
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in CARRIED]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), *pins], check=True)
    wheels = sorted(folder.glob("*.whl"))
    impure = [w.name for w in wheels if not w.name.endswith("-none-any.whl")]
    size = sum(w.stat().st_size for w in wheels)
    if impure or size > CARRY_LIMIT:
        raise SystemExit(f"gpu_step.py: wheels in {folder} not carriable: {impure or f'{size / 2**20:.1f} MiB'}")
    print(f"{len(wheels)} wheels, {size / 2**20:.2f} MiB in {folder}: carry it with the repository")


def use_carried_wheels(folder: Path) -> None:
    """Unpack the carried wheels (a wheel is a zip of its installed files) behind the machine's own packages."""
    wheels = sorted(folder.glob("*.whl"))
    site = folder / "site"
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    if wheels:
        sys.path.append(str(site))
    missing = [name for name in CARRIED if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"gpu_step.py: {', '.join(missing)} not importable and not in {folder}; "
            "run `make gpu-wheels` where the package registries are reachable and carry that folder"
        )


def make_step(case: tuple, variant: str, batch: int, device: torch.device):
    factory, frames, crop, variants = case
    torch.manual_seed(0)
    vmp = variant != "none"
    model = PromptedModel(factory(CLASSES), CLASSES, frames, vmp=vmp, vmp_sites=variants.get(variant)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    clip = torch.randn(batch, 3, frames + int(vmp), crop, crop, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits, _ = model(clip)
        nn.functional.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def peak_memory(step, device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step()
    return torch.cuda.max_memory_allocated()


def copy_bandwidth(device: torch.device, gib: float = 2.0) -> float:
    """Bytes per second of a device-to-device copy (read + write), median of 5."""
    source = torch.empty(int(gib * 2**30) // 4, device=device)
    target = torch.empty_like(source)

    def copy():
        target.copy_(source)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = time_steps_interleaved({"copy": copy}, 5)["copy"]
    return 2 * source.numel() * 4 / seconds


def prompt_bandwidth(device: torch.device, repeats: int, smoke: bool) -> dict:
    """The prompt layer's achieved bandwidth: its least traffic over its fp32 forward + backward time."""
    from vmp_lightning.prompt import LearnableSigmoid, MotionPrompt

    batch, frames, size = (2, 5, 32) if smoke else (8, 33, 224)
    layer = MotionPrompt(pn=LearnableSigmoid(init_m=0.5, init_n=0.1)).to(device)
    clip = torch.randn(batch, 3, frames, size, size, device=device, requires_grad=True)

    def step():
        clip.grad = None
        prompts, attention = layer(clip)
        torch.autograd.backward((prompts, attention), (torch.ones_like(prompts), torch.ones_like(attention)))
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = time_steps_interleaved({"layer": step}, repeats)["layer"]
    pixels, steps = batch * size * size, frames - 1
    least = 4 * pixels * ((3 * frames + steps + 3 * steps) + (3 * steps + steps + 3 * frames + steps + 3 * frames))
    achieved, copy = least / seconds, copy_bandwidth(device, 0.05 if smoke else 2.0)
    return {"input": f"{batch}x3x{frames}x{size}x{size}", "ms": 1000 * seconds, "gb_per_s": achieved / 1e9,
            "copy_gb_per_s": copy / 1e9, "fraction_of_copy": achieved / copy}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/gpu_step")
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="carried wheels of CARRIED")
    parser.add_argument("--make-wheels", action="store_true", help="fill --wheels here and stop")
    args = parser.parse_args()
    if args.make_wheels:
        return make_wheels(args.wheels)
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_step.py: no CUDA GPU here (torch.cuda.is_available() is False); --smoke runs it on the CPU"
        )
    use_carried_wheels(args.wheels)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cases = SMOKE if args.smoke else CASES
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    rows = []
    for name in args.only.split(","):
        steps = {v: make_step(cases[name], v, args.batch, device) for v in ["none", *cases[name][3]]}
        memory = {variant: peak_memory(step, device) for variant, step in steps.items()}
        seconds = time_steps_interleaved(steps, args.repeats)
        for variant in cases[name][3]:
            rows.append(
                {
                    "backbone": name,
                    "vmp": variant,
                    "baseline_ms": 1000 * seconds["none"],
                    "vmp_ms": 1000 * seconds[variant],
                    "time_ratio": seconds[variant] / seconds["none"],
                    "baseline_peak_mib": memory["none"] / 2**20,
                    "vmp_peak_mib": memory[variant] / 2**20,
                    "memory_ratio": memory[variant] / memory["none"] if memory["none"] else None,
                }
            )
            print(rows[-1], flush=True)
        del steps
    bandwidth = prompt_bandwidth(device, args.repeats, args.smoke)
    print(bandwidth, flush=True)
    machine = {"device": card, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke}
    out = Path(args.out + ("_smoke" if args.smoke else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine, "rows": rows, "prompt_bandwidth": bandwidth}
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    lines = [
        f"Training step with and without VMPs on {card}, batch {args.batch}, bf16 autocast, torch {machine['torch']}, "
        f"{machine['date']}" + (" (smoke sizes)" if args.smoke else ""),
        "",
        "| backbone | VMPs on | step (ms) | with VMPs (ms) | time ratio | peak (MiB) | with VMPs (MiB) "
        "| memory ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['memory_ratio']:.3f}" if r["memory_ratio"] else "n/a"
        lines.append(
            f"| {r['backbone']} | {r['vmp']} | {r['baseline_ms']:.1f} | {r['vmp_ms']:.1f} | {r['time_ratio']:.3f} | "
            f"{r['baseline_peak_mib']:.0f} | {r['vmp_peak_mib']:.0f} | {ratio} |"
        )
    lines += [
        "",
        f"Prompt layer alone, fp32 forward + backward, {bandwidth['input']}: {bandwidth['ms']:.2f} ms, "
        f"{bandwidth['gb_per_s']:.0f} GB/s of its least traffic = {100 * bandwidth['fraction_of_copy']:.0f} % of "
        f"this card's copy bandwidth ({bandwidth['copy_gb_per_s']:.0f} GB/s; goal >= 70 %)",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
