"""`vmp-lightning reproduce <manifest>`: fit then test every run of a manifest, resumable.

Each run lives in ``<out>/<manifest>/<model>/<dataset>/`` (its W&B ``save_dir``). A run with a ``metrics.json``
holding test metrics is done and skipped; one with a ``last.ckpt`` resumes from it; a failed run is reported and
the others go on. Single-device runs execute in this process when the caller hands over the command line's entry
point (``Options.in_process``: the harness sits below the command line and imports nothing of it); multi-device runs
always as ``vmp-lightning fit`` subprocesses, since DDP re-launches the command it was started with.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmp_lightning.harness.manifest import Manifest, Run
from vmp_lightning.harness.slurm import (
    After,
    InProcess,
    SlurmOptions,
    SubmissionError,
    failed_job,
    queued_job,
    submit,
)
from vmp_lightning.runs import RUN_ID_VARIABLE, DamagedRunError, RunFolder, RunLock


@dataclass
class Options:
    out: Path
    data_root: Path | None = None
    ckpt_root: Path | None = None
    devices: str | None = None
    precision: str | None = None
    smoke: bool = False
    dry_run: bool = False
    extra: tuple[str, ...] = ()
    in_process: InProcess | None = None  # None: every run as a subprocess
    slurm: SlurmOptions | None = None  # each run as its own SLURM job (needs in_process: what the job runs)
    retry_failed: bool = False  # submit a run whose last SLURM job failed again


def run_folder(out: Path, run: Run) -> Path:
    return Path(out) / run.manifest / run.name


def identity(name: str, folder: Path) -> str:
    """A run id from what the run is (``table2/x3d+vmp/hmdb51_s1/seed0``) and where it lives (one W&B project may
    hold the runs of several output folders): the same for every job, process and requeue of that run."""
    digest = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:6]
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", name) + f"-{digest}"


def run_metrics(folder: Path, require_test: bool = True) -> dict | None:
    """The newest ``metrics.json`` of a run folder (holding test metrics unless ``require_test`` is off);
    None: the run is not done."""
    records = []
    for run in RunFolder.under(folder):
        if run.metrics.is_file():
            try:
                records.append(json.loads(run.metrics.read_text()) | {"path": str(run.metrics)})
            except (json.JSONDecodeError, UnicodeDecodeError):
                print(f"{run.metrics} is damaged (not JSON): the run counts as not done and is tested again")
    done = [r for r in records if r.get("test") or not require_test]
    return max(done, key=lambda r: Path(r["path"]).stat().st_mtime) if done else None


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted((run.last for run in RunFolder.under(folder) if run.last.is_file()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


#: Exit codes of a run stopped by SIGINT, SIGTERM or SIGUSR2 (128 + the signal), its last step saved.
STOP_CODES = {128 + signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGUSR2}


def stop_code(status: dict[str, str]) -> int | None:
    """The exit code for a call whose run was stopped by a signal (130 Ctrl-C, else 143), or None."""
    stopped = [state.split(": ")[1] for state in status.values() if state.startswith("stopped")]
    return None if not stopped else 130 if stopped[0] == "SIGINT" else 143


class RunNotReady(RuntimeError):
    """A run that cannot start: its pretrained file is missing, or the run it starts from is not done."""


def placement_flags(folder: Path, name: str, group: str) -> list[str]:
    """Where a harness run writes (its folder, also the W&B save_dir) and its W&B name and group."""
    return [
        f"--trainer.default_root_dir={folder}",
        f"--trainer.logger.init_args.save_dir={folder}",
        f"--trainer.logger.init_args.name={name}",
        f"--trainer.logger.init_args.group={group}",
    ]


def init_from_flags(source: Path, label: str) -> list[str]:
    """The flag that starts a run from the best checkpoint of the run in ``source`` (`RunNotReady` while that
    run is not done); a SLURM job that waits for the source's job calls it when it starts."""
    metrics = run_metrics(source)
    if metrics is None or not metrics.get("best_checkpoint"):
        raise RunNotReady(f"{label}, which is not done yet")
    return [f"--model.init_args.init_checkpoint={metrics['best_checkpoint']}"]


def init_source(manifest: Manifest, run: Run, options: Options) -> tuple[Path, str]:
    """The folder of the run whose checkpoint ``run`` starts from, and how to name that in a message."""
    source = manifest.run(run.init_from, run.dataset, run.seed)
    return run_folder(options.out, source), f"{run.name} starts from {run.init_from}/{run.dataset}"


def fit_arguments(manifest: Manifest, run: Run, options: Options, source_later: bool = False) -> list[str]:
    """The ``vmp-lightning fit`` argument list of a run (resuming it when it was interrupted). ``source_later``:
    without the checkpoint of the run it starts from, which the job adds when it starts (`init_from_flags`)."""
    folder = run_folder(options.out, run)
    args = [
        "fit",
        *run.flags(options.smoke),
        *placement_flags(folder, f"{run.manifest}/{run.name}", f"{run.manifest}/{run.model}"),
        f"--trainer.logger.init_args.tags={json.dumps(run.tags)}",
        f"--run_id={identity(f'{run.manifest}/{run.name}', folder)}",
        "--test_after_fit=true",
    ]
    data_root = options.data_root if not options.smoke else options.out / "smoke-data"
    if data_root is not None and run.data_root:
        layout = manifest.smoke_layouts[run.dataset] if options.smoke else run.data_root
        args.append(f"--data.init_args.root={Path(data_root) / layout}")
    if run.init_from is not None:
        args += [] if source_later else init_from_flags(*init_source(manifest, run, options))
    elif run.checkpoint and not options.smoke:
        if options.ckpt_root is None:
            raise RunNotReady(f"{run.name} starts from {run.checkpoint}: set CKPT_ROOT to the folder holding it")
        path = Path(options.ckpt_root) / run.checkpoint
        if not path.is_file():
            source = f" (download: {run.checkpoint_source})" if run.checkpoint_source else ""
            raise RunNotReady(f"{run.name}: pretrained checkpoint {path} not found{source}")
        args.append(f"--model.init_args.init_checkpoint={path}")
    if options.devices:
        args.append(f"--trainer.devices={options.devices}")
    if options.precision:
        args.append(f"--trainer.precision={options.precision}")
    args.extend(options.extra)
    last = latest_checkpoint(folder)
    state = RunFolder(last.parent.parent).latest_state() if last is not None else None
    if state is not None:
        args.append(f"--ckpt_path={state}")
    return args


def execute(args: list[str], devices: str | None, in_process: InProcess | None = None) -> int:
    """Run ``vmp-lightning <args>``: with ``in_process`` on one device in this process, else as a subprocess; the
    exit code."""
    if in_process is None or devices not in (None, "", "1"):
        code = subprocess.call([sys.executable, "-m", "vmp_lightning", *args])
        return 128 - code if code < 0 else code  # a child the signal ended: as a shell reports it
    argv = sys.argv
    sys.argv = argv[:1]  # LightningCLI warns when it is given args and sys.argv holds more
    try:
        in_process(args)
        return 0
    except SystemExit as stop:
        return int(stop.code or 0)
    except Exception:  # a bug or a library error in one run must not stop the others
        traceback.print_exc()
        return 1
    finally:
        sys.argv = argv
        import wandb

        if wandb.run is not None:
            wandb.run.finish()


def launch_on_slurm(run: Run, args: list[str], options: Options, after: After | None = None) -> str:
    if options.in_process is None:
        raise ValueError("the SLURM launcher needs the command line's entry point (Options.in_process)")
    folder = run_folder(options.out, run)
    job = submit(f"{run.manifest}/{run.name}", args, folder, options.in_process, options.slurm, after)
    return f"submitted: SLURM job {job}" + (f" (starts after job {after.job})" if after else "")


def after_source_job(manifest: Manifest, run: Run, options: Options) -> After | None:
    """Under SLURM, a run whose source run is queued or running waits for that job and then starts from its best
    checkpoint (Table 1's runs from the fine-tuned baseline); None otherwise."""
    if options.slurm is None or run.init_from is None:
        return None
    source, label = init_source(manifest, run, options)
    job = queued_job(source)
    return After(job, functools.partial(init_from_flags, source, label)) if job is not None else None


def ordered(runs: list[Run]) -> list[Run]:
    """Runs that start from another run's checkpoint go after all the others."""
    return [r for r in runs if r.init_from is None] + [r for r in runs if r.init_from is not None]


@contextlib.contextmanager
def noting_stops() -> Iterator[dict[str, int]]:
    """SIGTERM and SIGINT noted while the block runs (``{"signal": number}``) instead of ending the process: the run
    in progress stops at a saved step (`Preemption` tells this handler too), and nothing more is started."""
    noted = {"signal": 0}

    def note(signum: int, frame: object) -> None:
        noted["signal"] = noted["signal"] or signum

    note.notes_stops = True  # type: ignore[attr-defined]
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield noted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def reproduce(manifest: Manifest, options: Options, only: str | None = None) -> dict[str, str]:
    """Run the selected runs; returns run name -> ``done`` / ``skipped`` (done before) / ``failed: ...`` /
    ``stopped: <signal>`` (a signal stopped the call: the runs after it were not started)."""
    with noting_stops() as noted:
        return _reproduce(manifest, options, only, noted)


def _reproduce(manifest: Manifest, options: Options, only: str | None, noted: dict[str, int]) -> dict[str, str]:
    runs = ordered(manifest.select(only))
    if options.smoke and not options.dry_run:
        from vmp_lightning.harness.smoke import write_smoke_datasets  # the datasets' modules bring Lightning

        write_smoke_datasets(options.out / "smoke-data", {manifest.smoke_layouts[r.dataset] for r in runs})
    status: dict[str, str] = {}
    for index, run in enumerate(runs, 1):
        head = f"[{index}/{len(runs)}] {manifest.name}/{run.name}"
        if noted["signal"]:  # between two runs: the next one is not started
            status[run.name] = f"stopped: {signal.Signals(noted['signal']).name}"
            break
        if run_metrics(run_folder(options.out, run)) is not None:
            status[run.name] = "skipped"
            print(f"{head}: done before, skipped", flush=True)
            continue
        job = queued_job(run_folder(options.out, run)) if options.slurm is not None else None
        if job is not None:
            status[run.name] = f"queued: SLURM job {job}"
            print(f"{head}: queued or running as SLURM job {job}, not submitted again", flush=True)
            continue
        after = None
        try:
            args = fit_arguments(manifest, run, options)
        except DamagedRunError as error:
            status[run.name] = f"failed: {error}"
            print(f"{head}: {error}", flush=True)
            continue
        except RunNotReady as error:
            after = after_source_job(manifest, run, options)
            if after is None:
                status[run.name] = f"failed: {error}"
                print(f"{head}: {error}", flush=True)
                continue
            args = fit_arguments(manifest, run, options, source_later=True)
        failure = failed_job(run_folder(options.out, run)) if options.slurm is not None else None
        if failure is not None and not options.retry_failed:
            status[run.name] = f"failed: {failure}"
            print(f"{head}: {failure}; not submitted again (--retry-failed submits it)", flush=True)
            continue
        if options.dry_run:
            print(f"{head}: vmp-lightning {shlex.join(args)}", flush=True)
            status[run.name] = "planned"
            continue
        if options.slurm is not None:
            print(f"{head}: vmp-lightning {shlex.join(args)}", flush=True)
            try:
                status[run.name] = launch_on_slurm(run, args, options, after)
            except SubmissionError as error:  # the other runs are still submitted
                status[run.name] = f"failed: {error}"
            print(f"{head}: {status[run.name]}", flush=True)
            continue
        lock = RunLock(run_folder(options.out, run))
        holder = lock.acquire()
        if holder is not None:
            status[run.name] = f"skipped: in progress ({holder})"
            print(f"{head}: training in another call ({holder}): skipped", flush=True)
            continue
        try:
            if run_metrics(run_folder(options.out, run)) is not None:  # finished by another call meanwhile
                status[run.name] = "skipped"
                continue
            if after is None:  # the checkpoint to continue from, now that no other call writes it
                args = fit_arguments(manifest, run, options)
            print(f"{head}: vmp-lightning {shlex.join(args)}", flush=True)
            code = execute(args, options.devices, options.in_process)
        finally:
            lock.release()
        if code in STOP_CODES or noted["signal"]:  # a signal stopped the run at a saved step: start nothing more
            name = signal.Signals(code - 128 if code in STOP_CODES else noted["signal"]).name
            status[run.name] = f"stopped: {name}"
            print(f"{head}: stopped by {name}, its last step saved", flush=True)
            break
        done = code == 0 and run_metrics(run_folder(options.out, run)) is not None
        status[run.name] = "done" if done else f"failed: exit code {code}"
    keys = ("done", "skipped", "failed", *(("submitted", "queued") if options.slurm is not None else ()))
    if any(state.startswith("stopped") for state in status.values()):
        keys = (*keys, "stopped")
    counts = {key: sum(s.split(":")[0] == key for s in status.values()) for key in keys}
    print(f"{manifest.name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    for name, state in status.items():
        if state.startswith("failed"):
            print(f"  {name}: {state}", flush=True)
    os.environ.pop(RUN_ID_VARIABLE, None)
    return status
