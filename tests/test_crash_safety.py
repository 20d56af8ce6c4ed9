"""Nothing lost at the worst moment: a kill at every step of a checkpoint save, a full disk, damaged files left by
earlier versions, and a stop of the harness. The run folders sit on another filesystem than ``$TMPDIR`` (a tmpfs
mounted by the test as root, else ``/dev/shm``), the usual cluster layout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from helpers import REPO, run_cli, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.harness.reproduce import run_metrics
from vmp_lightning.runs import DamagedRunError, RunFolder


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def other_filesystem(size_mb: int = 64):
    """A folder on another filesystem than ``$TMPDIR``: a tmpfs of ``size_mb`` mounted here (root), else a folder
    in ``/dev/shm`` (never filled)."""
    folder = Path(tempfile.mkdtemp(prefix="vmp-fs-"))
    mounted = can_mount() and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)])
    if not mounted or mounted.returncode != 0:
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix="vmp-fs-", dir="/dev/shm"))
    try:
        assert os.stat(folder).st_dev != os.stat(tempfile.gettempdir()).st_dev
        yield folder
    finally:
        if mounted and mounted.returncode == 0:
            subprocess.run(["umount", str(folder)], check=True)
            folder.rmdir()
        else:
            shutil.rmtree(folder, ignore_errors=True)


def fit(root: str, folder: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A 3-epoch fit of run ``r`` in ``folder`` in a child process (tests' helpers importable)."""
    args = ["fit", *tiny_data_args(root), f"--trainer.default_root_dir={folder}", "--trainer.logger=false"]
    args += ["--trainer.max_epochs=3", "--run_id=r", "--trainer.enable_progress_bar=false", *extra]
    return run_cli(args, env={"PYTHONPATH": str(REPO / "tests"), **(env or {})})


def weights(run: Path) -> dict:
    return torch.load(RunFolder(run).last, weights_only=True)["state_dict"]


def leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*.partial*")]


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["write", "fsync", "rename"])
def test_a_kill_at_any_step_of_a_checkpoint_save_resumes_to_the_uninterrupted_weights(synthetic_root, stage):
    with other_filesystem() as folder, tempfile.TemporaryDirectory() as tmpdir:
        env = {"TMPDIR": tmpdir}
        assert fit(synthetic_root, folder / "whole", env=env).returncode == 0
        killer = ["--trainer.callbacks+=helpers.KillDuringSave", f"--trainer.callbacks.stage={stage}"]
        killed = fit(synthetic_root, folder / "killed", *killer, env=env)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        run = folder / "killed" / "runs" / "r"
        if stage != "rename":
            assert leftovers(run), "the kill came before the rename: the temporary file is still there"
        assert torch.load(RunFolder(run).last, weights_only=True)["epoch"] == (1 if stage == "rename" else 0)
        resumed = fit(synthetic_root, folder / "killed", env=env)  # the same run id: continued by itself
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        whole = weights(folder / "whole" / "runs" / "r")
        assert all(torch.equal(whole[k], v) for k, v in weights(run).items())
        assert leftovers(folder, Path(tmpdir)) == []


@pytest.mark.slow
@pytest.mark.skipif(not can_mount(), reason="filling a disk needs a tmpfs of its own (root), never /dev/shm")
def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint_and_is_one_line(synthetic_root):
    with other_filesystem(size_mb=12) as folder:
        filler = ["--trainer.callbacks+=helpers.FillDiskAfter"]
        full = fit(synthetic_root, folder, *filler)
        assert full.returncode == 2, full.stderr[-2000:]
        (line,) = [line for line in full.stderr.splitlines() if line.startswith("vmp-lightning: error:")]
        run = folder / "runs" / "r"
        assert f"no space left in {run / 'checkpoints'} to write" in line and "MB needed" in line
        assert "Traceback" not in full.stderr
        saved = torch.load(RunFolder(run).last, weights_only=True)  # the first epoch's state, whole
        assert saved["epoch"] == 0 and leftovers(folder) == []
        (folder / "runs" / "filler.bin").unlink()
        assert fit(synthetic_root, folder).returncode == 0  # space freed: resumed


def test_an_injected_full_disk_is_one_line_and_the_previous_file_stays(tmp_path, monkeypatch):
    """Where no tmpfs can be mounted: the writer meets ENOSPC itself."""
    import errno

    from vmp_lightning.checkpointing import AtomicCheckpointIO, CheckpointSpaceError

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vmp_lightning.checkpointing.torch.save", full)
    with pytest.raises(CheckpointSpaceError, match=rf"^no space left in {tmp_path} to write last.ckpt \(about"):
        AtomicCheckpointIO().save_checkpoint({"w": torch.ones(1 << 20)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3)) and leftovers(tmp_path) == []


def test_a_truncated_last_checkpoint_is_named_and_the_run_continues_from_the_newest_good_one(
    synthetic_root, tmp_path, caplog
):
    args = ["fit", *tiny_data_args(synthetic_root), "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    args += ["--run_id=r", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    build_cli([*args, "--trainer.max_epochs=2"])
    run = RunFolder(tmp_path / "runs" / "r")
    (best,) = run.checkpoints.glob("epoch*.ckpt")
    run.last.write_bytes(run.last.read_bytes()[:5000])  # cut short, as a crash of 0.4 left it
    resumed = build_cli([*args, "--trainer.max_epochs=3"])
    assert f"{run.last} is damaged (truncated: no zip directory at its end)" in caplog.text
    assert f"continuing the run from {best.name}" in caplog.text
    assert resumed.trainer.current_epoch == 3 and torch.load(run.last, weights_only=True)["epoch"] == 2
    for path in run.checkpoints.glob("*.ckpt"):
        path.write_bytes(b"")
    with pytest.raises(DamagedRunError, match=rf"delete {run.checkpoints} to train the run again"):
        build_cli([*args, "--trainer.max_epochs=4"])


def test_a_truncated_metrics_file_is_named_and_the_run_counts_as_not_done(tmp_path, capsys):
    run = RunFolder(tmp_path / "vmp-lightning" / "r")
    run.path.mkdir(parents=True)
    run.metrics.write_text(json.dumps({"test": {"test/acc1": 0.5}})[:12])
    assert run_metrics(tmp_path) is None
    assert (
        f"{run.metrics} is damaged (not JSON): the run counts as not done and is tested again"
        in capsys.readouterr().out
    )


@pytest.mark.slow
def test_sigterm_to_the_harness_group_stops_it_after_the_run_in_progress(tmp_path):
    """Run 1 of 2 is stopped at a saved step by SIGTERM to the whole process group (as SLURM sends it); run 2 is
    never started; the call exits 143 and says how to continue."""
    stopper = ["--trainer.callbacks+=helpers.SignalAt", "--trainer.callbacks.epoch=0", "--trainer.callbacks.batch=0"]
    stopper += ["--trainer.callbacks.signal=SIGTERM", "--trainer.callbacks.group=true"]
    only = "x3d/hmdb51_s1,x3d+vmp/hmdb51_s1"
    args = ["reproduce", str(REPO / "experiments" / "table2.yaml"), "--smoke", f"--only={only}"]
    args += [f"--out={tmp_path / 'runs'}", f"--results={tmp_path / 'results'}", "--", *stopper]
    env = {"PYTHONPATH": str(REPO / "tests"), "WANDB_MODE": "offline"}
    stopped = run_cli(args, env=env, new_session=True, timeout=600)
    assert stopped.returncode == 143, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    assert "[1/2] table2/x3d/hmdb51_s1: stopped by SIGTERM, its last step saved" in stopped.stdout
    assert "stopped; continue with: vmp-lightning reproduce" in stopped.stdout
    smoke = tmp_path / "runs" / "smoke" / "table2"
    (first,) = RunFolder.under(smoke / "x3d" / "hmdb51_s1")
    assert first.last.is_file()
    assert not (smoke / "x3d+vmp").exists()  # run 2 untouched
    assert "[2/2]" not in stopped.stdout


def test_a_run_lock_is_held_by_one_process_and_a_dead_holders_is_taken_over(tmp_path):
    from vmp_lightning.runs import RunLock

    code = (
        f"import time; from vmp_lightning.runs import RunLock; lock = RunLock({str(tmp_path)!r}); "
        "assert lock.acquire() is None; print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = RunLock(tmp_path).acquire()
        assert said is not None and f"pid {holder.pid}" in said and "host " in said
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path)  # its holder died without releasing it: the lock is free
    assert lock.acquire() is None and f"pid {os.getpid()}" in lock.path.read_text()
    lock.release()


@pytest.mark.slow
def test_two_calls_of_reproduce_on_one_folder_train_each_run_once(tmp_path):
    only = "x3d/hmdb51_s1,x3d+vmp/hmdb51_s1"
    args = ["reproduce", str(REPO / "experiments" / "table2.yaml"), "--smoke", f"--only={only}"]
    args += [f"--out={tmp_path / 'runs'}", f"--results={tmp_path / 'results'}"]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO / "tests")}
    command = [sys.executable, "-m", "vmp_lightning", *args]
    calls = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"
    ]
    outputs = [call.communicate(timeout=600)[0] for call in calls]
    assert [call.returncode for call in calls] == [0, 0], outputs
    started = [line for out in outputs for line in out.splitlines() if ": vmp-lightning fit " in line]
    assert len(started) == 2 and {line.split(":")[0].split("] ")[1] for line in started} == {
        "table2/x3d/hmdb51_s1",
        "table2/x3d+vmp/hmdb51_s1",
    }  # each run trained by one of the two calls
