"""Names a run folder and a run's processes share, known to the loggers, the CLI and the harness alike. The standard
library only: the harness's table reads run folders without loading Lightning."""

from __future__ import annotations

from pathlib import Path

#: The run's final metrics, written beside its checkpoints (what the harness's tables read).
METRICS_FILE = "metrics.json"

#: The run's full config, as its fit parsed it (what ``fit --config`` resumes and ``test --ckpt_path`` reads).
RUN_CONFIG = "config.yaml"

#: The run's checkpoints folder.
CHECKPOINTS = "checkpoints"

#: The run this process works for (DDP children learn their parent's through it).
RUN_ID_VARIABLE = "VMP_LIGHTNING_RUN_ID"


def latest_state(run: Path) -> Path | None:
    """The newest checkpoint a run folder holds to continue from: ``checkpoints/last.ckpt`` unless Lightning's
    SLURM requeue left a newer ``hpc_ckpt_*.ckpt`` (which Lightning itself resumes from: then None)."""
    last = Path(run) / CHECKPOINTS / "last.ckpt"
    hpc = [p.stat().st_mtime for p in Path(run).glob("hpc_ckpt_*.ckpt")]
    if last.is_file() and (not hpc or last.stat().st_mtime >= max(hpc)):
        return last
    return None


def run_of_checkpoint(ckpt_path: str | Path) -> Path | None:
    """The run folder a checkpoint of ours belongs to (``<run>/checkpoints/<file>.ckpt`` beside ``<run>/config.yaml``),
    or None (Lightning's names ``last``, ``best``, ... are not files)."""
    path = Path(ckpt_path)
    run = path.parent.parent
    return run if path.parent.name == CHECKPOINTS and (run / RUN_CONFIG).is_file() else None
