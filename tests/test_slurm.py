"""`reproduce --launcher slurm` on a real one-node SLURM (Debian's slurm 22.05 with munge, `tests/slurm/cluster.sh`),
not on fakes: CPU jobs through the harness end as a local run ends, a second call submits nothing while a job waits,
and a job sbatch refuses is one line while the call goes on. Run by `make test-slurm` (`.ci/run` runs it after the
main tests); the cluster is started here when this machine is root with apt, and in CI its absence is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import REPO, run_cli
from vmp_lightning.harness.reproduce import run_metrics
from vmp_lightning.runs import RunFolder

pytestmark = pytest.mark.slurm

CELL = "x3d/hmdb51_s1"


@pytest.fixture(scope="module")
def cluster() -> None:
    usable = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if not usable:
        message = "the SLURM tests start a one-node cluster: they need root and apt (Debian)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    started = subprocess.run(["bash", str(REPO / "tests" / "slurm" / "cluster.sh"), "start"], capture_output=True)
    assert started.returncode == 0, started.stderr.decode()[-2000:]
    yield
    subprocess.run(["scancel", "--user", "root"], capture_output=True)


def reproduce(out: Path, *extra: str, only: str = CELL) -> subprocess.CompletedProcess:
    args = ["reproduce", str(REPO / "experiments" / "table2.yaml"), "--smoke", f"--only={only}"]
    args += [f"--out={out}", f"--results={out / 'results'}", *extra]
    return run_cli(args, env={"WANDB_MODE": "offline"}, timeout=600)


def on_slurm(*extra: str) -> list[str]:
    return ["--launcher=slurm", "--gpus-per-node=0", "--cpus-per-task=1", "--time=20", *extra]


def wait_for_jobs(timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
            return
        time.sleep(2)
    pytest.fail("SLURM jobs still queued: " + subprocess.run(["squeue"], capture_output=True, text=True).stdout)


def cell_folder(out: Path) -> Path:
    return out / "smoke" / "table2" / CELL


def test_a_cpu_job_of_the_harness_ends_as_the_same_run_ends_locally(cluster, tmp_path):
    local = reproduce(tmp_path / "local")
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    submitted = reproduce(tmp_path / "slurm", *on_slurm())
    assert submitted.returncode == 0, submitted.stdout[-2000:] + submitted.stderr[-2000:]
    assert "submitted: SLURM job" in submitted.stdout
    wait_for_jobs()
    ours, theirs = (run_metrics(cell_folder(tmp_path / name)) for name in ("slurm", "local"))
    assert ours is not None, (cell_folder(tmp_path / "slurm") / "slurm").glob("*.err")
    assert ours["test"] == theirs["test"]  # bit for bit: the same seeds, order and arithmetic
    dumps = [RunFolder(Path(record["path"]).parent).predictions().read_text() for record in (ours, theirs)]
    assert dumps[0] == dumps[1]
    again = reproduce(tmp_path / "slurm", *on_slurm())
    assert "done before, skipped" in again.stdout


def test_a_waiting_job_is_not_submitted_again_and_a_refused_one_is_one_line(cluster, tmp_path):
    held = reproduce(tmp_path, *on_slurm("--sbatch", "hold"))  # a valueless sbatch option: the job waits
    assert held.returncode == 0 and "submitted: SLURM job" in held.stdout, held.stderr[-2000:]
    again = reproduce(tmp_path, *on_slurm())
    assert "queued or running as SLURM job" in again.stdout and "submitted:" not in again.stdout
    subprocess.run(["scancel", "--user", "root"], check=True)
    wait_for_jobs()
    refused = reproduce(tmp_path / "other", *on_slurm("--partition=nowhere"), only=f"{CELL},x3d+vmp/hmdb51_s1")
    assert refused.returncode == 1
    lines = [line for line in refused.stdout.splitlines() if "] table2/" in line and "sbatch refused the job" in line]
    assert len(lines) == 2 and "invalid partition" in lines[0].lower()  # both runs tried, one line each
    assert "table2: 0 done, 0 skipped, 2 failed" in refused.stdout  # the summary ends the call
    assert "Traceback" not in refused.stdout + refused.stderr


def test_a_failed_job_is_reported_with_its_log_and_not_submitted_again_unless_asked(cluster, tmp_path):
    """A job that fails (a wrong data root: exit 2, its message only in the job's log) is named on the next call,
    with the line that says why and the log's path, and submitted again only with --retry-failed."""
    wrong = reproduce(tmp_path, *on_slurm(), "--", f"--data.init_args.root={tmp_path / 'nowhere'}")
    assert "submitted: SLURM job" in wrong.stdout, wrong.stderr[-2000:]
    wait_for_jobs()
    again = reproduce(tmp_path, *on_slurm())
    assert again.returncode == 1
    (line,) = [line for line in again.stdout.splitlines() if "] table2/" in line and "ended without finishing" in line]
    assert "vmp-lightning: error:" in line and "_0_log.err" in line and "not submitted again" in line
    assert "submitted: SLURM job" not in again.stdout
    retried = reproduce(tmp_path, *on_slurm("--retry-failed"))
    assert "submitted: SLURM job" in retried.stdout
    wait_for_jobs()
    assert run_metrics(cell_folder(tmp_path)) is not None  # the right root this time: done
