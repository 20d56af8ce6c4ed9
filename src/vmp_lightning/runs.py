"""A run: its id, its folder and every file in it, and which checkpoint continues it. The one place that names them;
the CLI, the callbacks, the harness and the analysis tools go through `RunFolder`. The standard library only: the
harness's tables read run folders without loading Lightning.

A run lives in ``<runs root>/<run id>/``, the runs root being ``<W&B save_dir>/<project>`` (``<default_root_dir>/runs``
without a logger). Its id is given (``--run_id``, the harness's identity of a run), agreed by the processes of one
job without talking (a SLURM step, a torchrun rendezvous, a W&B sweep agent, a DDP child), or made fresh.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmp_lightning.errors import UserError

#: The run this process works for (DDP children learn their parent's through it).
RUN_ID_VARIABLE = "VMP_LIGHTNING_RUN_ID"

#: The W&B folder beside the runs of a ``save_dir``: not a run.
WANDB_FOLDER = "wandb"

#: In a harness run folder (a ``save_dir``): the SLURM job that runs it (`harness.slurm`).
SLURM_JOB_RECORD = "slurm_job_id"


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run and the names of its files."""

    path: Path

    #: The latest state's file in ``checkpoints/`` (`LatestCheckpoint` writes it).
    LAST = "last.ckpt"
    #: An evaluation's files: ``<stage>_predictions.csv`` and the report beside it.
    PREDICTIONS, REPORT = "_predictions.csv", "_metrics.json"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        """The fit's full config (what ``fit --config`` resumes and ``test --ckpt_path`` reads)."""
        return self.path / "config.yaml"

    def stage_config(self, stage: str) -> Path:
        """The config of a ``test`` / ``validate`` / ``predict`` of the run's checkpoint (the fit's stays as it was)."""
        return self.config if stage == "fit" else self.path / f"config_{stage}.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        """The latest state (`LatestCheckpoint`): what a resume continues from."""
        return self.checkpoints / self.LAST

    @property
    def metrics(self) -> Path:
        """The final metrics and the checkpoint tested (what the harness's tables read)."""
        return self.path / "metrics.json"

    def predictions(self, stage: str = "test") -> Path:
        """An evaluation's per-video dump (``test_predictions.csv``)."""
        return self.path / f"{stage}{self.PREDICTIONS}"

    def evaluation_report(self, stage: str = "test") -> Path:
        """An evaluation's video-level report and class names (``test_metrics.json``)."""
        return self.path / f"{stage}{self.REPORT}"

    @classmethod
    def report_beside(cls, predictions: str | Path) -> Path:
        """The evaluation report written beside a ``<stage>_predictions.csv`` (wherever the dump was copied)."""
        path = Path(predictions)
        return path.with_name(path.name.removesuffix(cls.PREDICTIONS) + cls.REPORT)

    def clip_predictions(self, suffix: str = "", extension: str = "csv") -> Path:
        """``predict``'s per-clip logits (``predictions.csv`` / ``.pt``; ``_rank<r>`` per process under DDP)."""
        return self.path / f"predictions{suffix}.{extension}"

    @property
    def validation_list(self) -> Path:
        """The videos the run validated on, one id a line."""
        return self.path / "val_videos.txt"

    def latest_state(self, say: Callable[[str], None] = print) -> Path | None:
        """The newest loadable checkpoint to continue from: ``last.ckpt``, else (damaged: said, with the file) the
        newest other checkpoint of the run; None when there is none; `DamagedRunError` when every one is damaged.
        Lightning's own SLURM requeue is off in our runs, so its mid-batch ``hpc_ckpt_*.ckpt`` (of earlier
        versions) is never taken."""
        others = sorted(set(self.checkpoints.glob("*.ckpt")) - {self.last}, key=lambda p: -p.stat().st_mtime)
        candidates = [p for p in (self.last, *others) if p.is_file()]
        damaged = []
        for path in candidates:
            problem = checkpoint_damage(path)
            if problem is None:
                if damaged:
                    say(f"{'; '.join(damaged)}: continuing the run from {path.name}, the newest good checkpoint")
                return path
            damaged.append(f"{path} is damaged ({problem})")
        if damaged:
            raise DamagedRunError(
                f"{'; '.join(damaged)}: no checkpoint of run {self.run_id} can be loaded; delete "
                f"{self.checkpoints} to train the run again from the start"
            )
        return None

    @classmethod
    def of_checkpoint(cls, ckpt_path: str | Path) -> RunFolder | None:
        """The run a checkpoint of ours belongs to (``<run>/checkpoints/<file>.ckpt`` beside ``<run>/config.yaml``),
        or None (Lightning's names ``last``, ``best``, ... are not files)."""
        path = Path(ckpt_path)
        run = cls(path.parent.parent)
        return run if path.parent == run.checkpoints and run.config.is_file() else None

    @classmethod
    def under(cls, save_dir: str | Path) -> Iterator[RunFolder]:
        """The runs placed under a ``save_dir`` (``<save_dir>/<project>/<run id>/``, the W&B folder left out)."""
        for project in sorted(Path(save_dir).glob("*/")):
            if project.name != WANDB_FOLDER:
                for folder in sorted(project.iterdir()):
                    run = cls(folder)
                    if run.config.is_file() or run.checkpoints.is_dir() or run.metrics.is_file():
                        yield run


class RunLock:
    """One trainer per run folder: held (an exclusive ``flock`` on ``<folder>/run.lock``) while a run trains,
    released on any exit, the process's death included, so a dead holder's lock is taken over by itself. The file
    says who holds it (host, pid, SLURM job) for the caller that finds it held."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "run.lock"
        self._handle: Any = None

    def acquire(self) -> str | None:
        """Take the lock: None when taken, else who holds it (``host <h>, pid <p>[, SLURM job <j>]``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            return holder
        handle.seek(0)
        handle.truncate()
        job = slurm_job()
        handle.write(f"host {socket.gethostname()}, pid {os.getpid()}" + (f", SLURM job {job}" if job else "") + "\n")
        handle.flush()
        self._handle = handle
        return None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the flock; the file stays (unlinking it would race a new holder)
            self._handle = None


class DamagedRunError(UserError, ValueError):
    """Every checkpoint of a run is damaged (truncated by a crash of an earlier version, or a full disk)."""


def checkpoint_damage(path: Path) -> str | None:
    """Why a checkpoint file cannot be loaded, or None. Checkpoints are zip files (``torch.save``) whose directory
    is at the end: a file cut short by a kill or a full disk has none."""
    if path.stat().st_size == 0:
        return "empty"
    if not zipfile.is_zipfile(path):
        return "truncated: no zip directory at its end"
    return None


def folder_name(name: object, what: str) -> str:
    """``name`` as one folder of a run's path (a manifest's, a model's, a dataset's, a sweep's or a run's name):
    refused when empty, absolute, or holding ``/``, ``\\`` or ``..``, which would write outside the folders asked
    for."""
    text = str(name)
    if not text or text in (".", "..") or any(bad in text for bad in ("/", "\\", "\0")) or ".." in text.split("."):
        raise UserError(f"{what} {text!r}: a name becomes a folder; use no '/', '..' or absolute path")
    return text


_FITS_PLACED = 0  # fits this process has given a folder (the harness or a notebook places several)


def new_run_id(runs_root: Path) -> str:
    """A new fit's id, never the job's alone. A DDP process that Lightning started takes its parent's, a trial that a
    W&B agent started the agent's; the processes of a multi-process SLURM step (srun) or torchrun rendezvous agree
    without talking, on the step or rendezvous and the fit's number in the process; otherwise a fresh one (time and a
    random suffix), under SLURM recorded in the job (`slurm_job_run_id`) so that a requeued job's fits continue their
    runs."""
    global _FITS_PLACED
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(RUN_ID_VARIABLE):
        return os.environ[RUN_ID_VARIABLE]
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        return os.environ["WANDB_RUN_ID"]  # a trial that `wandb agent` started: the sweep's id for it
    nth, _FITS_PLACED = _FITS_PLACED, _FITS_PLACED + 1
    job = slurm_job()
    if job and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return f"slurm-{job}-step{os.environ.get('SLURM_STEP_ID', 'batch')}-{nth}"
    if os.environ.get("TORCHELASTIC_RUN_ID", "none") != "none":
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}-{nth}"
    fresh = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return slurm_job_run_id(runs_root, job, fresh) if job else fresh


def slurm_job() -> str | None:
    """This SLURM job's id (``<array job>_<task>`` for an array task), or None outside SLURM."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def slurm_job_run_id(runs_root: Path, job: str, fresh: str) -> str:
    """The id of the n-th fit this incarnation of a SLURM job starts: the n-th run the job recorded in
    ``<runs root>/.slurm-job-<job>`` (lines ``<restart count> <run id>``), so a requeued job (``SLURM_RESTART_COUNT``)
    gives each of its fits back its run; ``fresh`` (recorded) for a fit the job had not started before."""
    runs_root.mkdir(parents=True, exist_ok=True)
    record = runs_root / f".slurm-job-{job}"
    restart = os.environ.get("SLURM_RESTART_COUNT", "0")
    with (runs_root / f".slurm-job-{job}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = [line.split() for line in record.read_text().splitlines()] if record.is_file() else []
        known = list(dict.fromkeys(run_id for _, run_id in lines))
        nth = sum(count == restart for count, _ in lines)
        run_id = known[nth] if nth < len(known) else fresh
        with record.open("a") as handle:
            handle.write(f"{restart} {run_id}\n")
    return run_id
