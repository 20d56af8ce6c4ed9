"""`vmp-lightning reproduce --launcher slurm`: each run of a manifest as its own SLURM job, submitted with submitit.

One mechanism stops and requeues a job. submitit asks SLURM for ``SIGUSR2`` ``signal_delay_s`` seconds before the
time limit (and SLURM sends SIGTERM at a preemption); during training the `Preemption` callback takes either
signal, every rank stops at one step and ``last.ckpt`` is saved; then `FitJob` hands the signal back to submitit,
which calls `FitJob.checkpoint` and requeues the job. Lightning's own SLURM requeue listens to ``SIGUSR1``, which
these jobs never get. The requeued job runs the same fit; its run id comes from the run (``--run_id``), so it
continues the same folder and W&B run from ``last.ckpt``. ``<run folder>/slurm_job_id`` names the job, so that
running ``reproduce`` again skips finished runs and does not resubmit queued or running ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmp_lightning.errors import UserError
from vmp_lightning.files import write_text
from vmp_lightning.lazy import import_optional
from vmp_lightning.runs import SLURM_JOB_RECORD

#: Runs ``vmp-lightning <args>`` in this process (`vmp_lightning.commands.main`).
InProcess = Callable[[list[str]], None]

#: squeue states of a job that is still to run or running: not to be submitted again.
ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED"}


@dataclass
class SlurmOptions:
    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    time_min: int = 24 * 60
    signal_delay_s: int = 120
    additional: dict[str, str] = field(default_factory=dict)  # any further #SBATCH setting (account, qos, ...)


class FitJob:
    """What each SLURM task runs: ``vmp-lightning <args>`` in its own process (one DDP rank per task).
    ``late_args`` gives the flags only known when the job starts (the best checkpoint of the run it starts from,
    which finished in the meantime)."""

    def __init__(self, args: list[str], entry: InProcess, late_args: Callable[[], list[str]] | None = None) -> None:
        self.args, self.entry, self.late_args = list(args), entry, late_args

    def __call__(self) -> None:
        try:
            self.entry([*self.args, *(self.late_args() if self.late_args else [])])
        except SystemExit as stop:
            stopped = stop.code in (128 + signal.SIGTERM, 128 + signal.SIGUSR2)
            if stopped and int(os.environ.get("SLURM_PROCID", "0")) == 0:
                # stopped and saved by the Preemption callback: submitit requeues (its handler calls checkpoint)
                signal.raise_signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))
            if stop.code not in (None, 0):
                raise

    def checkpoint(self) -> object:
        """The same fit again: it continues its run from ``last.ckpt``."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(FitJob(self.args, self.entry, self.late_args))


def job_state(job_id: str) -> str | None:
    """The job's state as squeue gives it, or None when squeue no longer lists it (finished, failed, unknown)."""
    try:
        done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = done.stdout.split()
    return states[0] if done.returncode == 0 and states else None


def queued_job(folder: Path) -> str | None:
    """The job that will run or is running this run (its id), if any."""
    path = Path(folder) / SLURM_JOB_RECORD
    if not path.is_file():
        return None
    job_id = path.read_text().strip()
    return job_id if job_state(job_id) in ALIVE else None


def failed_job(folder: Path) -> str | None:
    """Why the last SLURM job of a run ended without finishing it, naming its log (submitit's
    ``slurm/<job>_0_log.err``): None when no job was submitted or the job is still queued or running. The cluster
    keeps no record of finished jobs (no accounting): what the job left in its folder says it."""
    path = Path(folder) / SLURM_JOB_RECORD
    if not path.is_file():
        return None
    job_id = path.read_text().split()[0]
    if job_state(job_id) in ALIVE:
        return None
    log = Path(folder) / "slurm" / f"{job_id}_0_log.err"
    lines = (
        [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.is_file() else []
    )
    said = [
        line for line in lines if line.startswith("vmp-lightning: error:") or "CANCELLED" in line or "Error" in line
    ]
    last = (said or lines or ["no log"])[-1]
    return f"SLURM job {job_id} ended without finishing the run: {last} (log: {log})"


@dataclass
class After:
    """A job that waits for another: it starts once ``job`` ended well (and is cancelled if it failed), and adds
    ``late_args()`` to its command then."""

    job: str
    late_args: Callable[[], list[str]]


class SubmissionError(UserError, RuntimeError):
    """sbatch refused a job (no such partition, more CPUs or GPUs than a node has, ...)."""


def _sbatch_words(error: Exception) -> str:
    """The line of sbatch's output that says why (``sbatch: error: ...``), else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = [line.split("error:", 1)[1].strip() for line in lines if "sbatch: error:" in line]
    return "; ".join(dict.fromkeys(said)) or (lines[0] if lines else type(error).__name__)


def submit(
    name: str, args: list[str], folder: Path, entry: InProcess, options: SlurmOptions, after: After | None = None
) -> str:
    """Submit one run as a SLURM job (submitit's files in ``<folder>/slurm``); its job id, also written to
    ``<folder>/slurm_job_id``."""
    submitit = import_optional("submitit", "slurm", "--launcher slurm")

    gpus = options.gpus_per_node
    tasks = max(gpus, 1)  # one process per GPU; a CPU job: one process per node
    flags = [f"--trainer.devices={tasks}", f"--trainer.num_nodes={options.nodes}"]
    flags += ["--trainer.strategy=ddp"] if options.nodes * tasks > 1 else []
    flags += ["--trainer.accelerator=cpu"] if gpus == 0 else []
    executor = submitit.SlurmExecutor(folder=Path(folder) / "slurm")
    executor.update_parameters(
        job_name=name,
        **({"partition": options.partition} if options.partition else {}),
        nodes=options.nodes,
        ntasks_per_node=tasks,
        **({"gpus_per_node": gpus} if gpus else {}),
        cpus_per_task=options.cpus_per_task,
        time=options.time_min,
        signal_delay_s=options.signal_delay_s,
        additional_parameters={
            "requeue": True,
            **({"dependency": f"afterok:{after.job}", "kill_on_invalid_dep": "yes"} if after else {}),
            **options.additional,
        },
    )
    try:
        job = executor.submit(FitJob([*args, *flags], entry, after.late_args if after else None))
    except Exception as error:  # submitit's FailedJobError: sbatch's own words, after a long traceback
        raise SubmissionError(f"{name}: sbatch refused the job: {_sbatch_words(error)}") from None
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_text(Path(folder) / SLURM_JOB_RECORD, f"{job.job_id}\n")
    return str(job.job_id)
