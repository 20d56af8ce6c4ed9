"""On a machine with a GPU: the smoke Table 2 pipeline's X3D-S + VMP run (synthetic videos in HMDB-51's layout),
2 epochs on the GPU with bf16, through `vmp-lightning reproduce`; wall time, peak GPU memory and the run's metrics
go to benchmarks/results/gpu_smoke.{md,json} with the card's name.

    python benchmarks/gpu_smoke.py        (make bench-gpu runs it after gpu_step.py)
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from vmp_lightning.commands import main as vmp_lightning_main
from vmp_lightning.harness import load_manifest
from vmp_lightning.harness.reproduce import Options, reproduce, run_folder, run_metrics

REPO = Path(__file__).parents[1]
RUN = "x3d+vmp/hmdb51_s1"
GPU_FLAGS = (
    "--trainer.accelerator=gpu",
    "--trainer.precision=bf16-mixed",
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=null",
    "--model.init_args.backbone.init_args.size=s",
    "--model.init_args.backbone.init_args.head_dim=2048",
    "--data.init_args.batch_size=8",
    "--data.init_args.num_workers=4",
)


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: run this on a machine with one")
    manifest = load_manifest(REPO / "experiments" / "table2.yaml")
    with tempfile.TemporaryDirectory() as folder:
        options = Options(out=Path(folder), smoke=True, extra=GPU_FLAGS, in_process=vmp_lightning_main)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        status = reproduce(manifest, options, only=RUN)
        seconds = time.perf_counter() - start
        record = run_metrics(run_folder(options.out, manifest.select(RUN)[0])) or {}
    result = {
        "device": torch.cuda.get_device_name(),
        "status": status,
        "wall_s": round(seconds, 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "test": record.get("test", {}),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = REPO / "benchmarks" / "results" / "gpu_smoke"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(
        f"Smoke Table 2 run {RUN} (X3D-S + VMPs, synthetic HMDB-51 layout, 2 epochs, bf16) on {result['device']}, "
        f"torch {result['torch']}, {result['date']}: {status[RUN]}, {result['wall_s']} s wall time including "
        f"data writing and the test, peak GPU memory {result['peak_gpu_memory_gib']} GiB.\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
