"""Runs that lose nothing: last.ckpt is the latest state, a killed or preempted run resumes to the same result,
a resumed run continues its folder and W&B run, concurrent runs keep apart, fast_dev_run writes no checkpoint."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from helpers import QUIET, REPO, fit_args, read_trace, run_cli, tiny_data_args
from vmp_lightning.cli import build_cli

TESTS = {"PYTHONPATH": str(REPO / "tests")}
FROZEN = ["--model.optimizer.init_args.lr=0.0", "--model.lr_scheduler=null"]  # val/acc1 never improves


def runs_in(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "runs").iterdir() if p.is_dir())


def test_last_checkpoint_is_the_latest_epoch_whatever_the_metric(synthetic_root, tmp_path):
    cli = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=3", *FROZEN))
    checkpoints = Path(cli.trainer.default_root_dir) / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2
    (best,) = [p for p in checkpoints.glob("epoch*.ckpt")]
    assert torch.load(best, weights_only=True)["epoch"] == 0  # the monitored checkpoint stayed at the first epoch


def final_state(run: Path) -> dict:
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return {"epoch": saved["epoch"], "step": saved["global_step"], "weights": saved["state_dict"]}


def assert_same_final_state(run: Path, expected_run: Path) -> None:
    expected, got = final_state(expected_run), final_state(run)
    assert (got["epoch"], got["step"]) == (expected["epoch"], expected["step"])
    for name, value in expected["weights"].items():
        torch.testing.assert_close(got["weights"][name], value, rtol=0, atol=0, msg=name)


def resumable_args(root: str, folder: Path) -> list[str]:
    """A VMP run of 3 epochs x 6 batches with a seed and the default 2 loader workers, tracing its batches."""
    workers = "--data.init_args.num_workers=2"
    args = fit_args(root, folder, "--trainer.max_epochs=3", "--model.vmp=true", "--seed_everything=7", workers)
    return [*args, "--trainer.callbacks+=helpers.BatchTrace"]


def traced(folder: Path) -> dict:
    return {**TESTS, "TRACE_FILE": str(folder / "trace.jsonl")}


@pytest.fixture(scope="module")
def uninterrupted(synthetic_root, tmp_path_factory) -> Path:
    """The run every interrupted one must end equal to (its folder; ``trace.jsonl`` beside ``runs/``)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = run_cli(resumable_args(synthetic_root, folder), env=traced(folder))
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def stop_and_resume(root: str, folder: Path, epoch: int, batch: int, signal: str, group: bool) -> tuple:
    """Stops a run with ``signal`` before ``batch`` of ``epoch`` (to its process group with ``group``), then resumes
    it from ``last.ckpt``: (the stopped process, its run folder)."""
    stopper = [
        "--trainer.callbacks+=helpers.SignalAt",
        f"--trainer.callbacks.epoch={epoch}",
        f"--trainer.callbacks.batch={batch}",
        f"--trainer.callbacks.signal={signal}",
        f"--trainer.callbacks.group={str(group).lower()}",
    ]
    stopped = run_cli([*resumable_args(root, folder), *stopper], env=traced(folder), new_session=group)
    (run,) = runs_in(folder)
    resumed = run_cli(
        [*resumable_args(root, folder), f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"], traced(folder)
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert runs_in(folder) == [run]  # the same run folder
    return stopped, run


@pytest.mark.slow
def test_a_run_killed_mid_epoch_with_loader_workers_resumes_to_the_same_weights(
    synthetic_root, tmp_path, uninterrupted
):
    killed, run = stop_and_resume(synthetic_root, tmp_path, epoch=2, batch=2, signal="SIGKILL", group=False)
    assert killed.returncode == -9  # nothing could be saved at that moment: resumed from the end of epoch 1
    assert_same_final_state(run, *runs_in(uninterrupted))


@pytest.mark.slow
@pytest.mark.parametrize(("signal", "exit_code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_sigterm_or_ctrl_c_to_the_process_group_saves_the_step_and_resumes_each_batch_once(
    synthetic_root, tmp_path, uninterrupted, signal, exit_code
):
    stopped, run = stop_and_resume(synthetic_root, tmp_path, epoch=1, batch=3, signal=signal, group=True)
    assert stopped.returncode == exit_code, stopped.stderr[-2000:]
    assert "resume with: vmp-lightning fit" in stopped.stderr and "DataLoader worker" not in stopped.stderr
    # the stopped run finished batch 3 and saved; the resumed one went on at batch 4: each batch trained once
    assert read_trace(tmp_path / "trace.jsonl") == read_trace(uninterrupted / "trace.jsonl")
    assert_same_final_state(run, *runs_in(uninterrupted))


@pytest.mark.slow
def test_sigterm_to_a_ddp_job_stops_every_rank_at_one_step_and_resumes_exactly(synthetic_root, tmp_path):
    ddp = f"--config={REPO / 'configs' / 'trainer' / 'cpu_ddp.yaml'}"
    whole = tmp_path / "whole"
    done = run_cli([*resumable_args(synthetic_root, whole), ddp], env=traced(whole))
    assert done.returncode == 0, done.stderr[-2000:]
    stopper = ["--trainer.callbacks+=helpers.SignalAt", "--trainer.callbacks.epoch=1", "--trainer.callbacks.batch=1"]
    stopper += ["--trainer.callbacks.signal=SIGTERM", "--trainer.callbacks.group=true"]
    folder = tmp_path / "stopped"
    stopped = run_cli([*resumable_args(synthetic_root, folder), ddp, *stopper], env=traced(folder), new_session=True)
    assert stopped.returncode == 143, stopped.stderr[-3000:]  # no gloo abort, no hang
    (run,) = runs_in(folder)
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 5  # 3 steps an epoch per rank, + batches 0 and 1
    resumed = run_cli([*resumable_args(synthetic_root, folder), ddp, f"--ckpt_path={last}"], env=traced(folder))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(read_trace(folder / "trace.jsonl")) == sorted(read_trace(whole / "trace.jsonl"))
    assert_same_final_state(run, *runs_in(whole))


@pytest.mark.slow
@pytest.mark.parametrize(("signal", "exit_code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_preemption_and_ctrl_c_save_a_resumable_checkpoint(synthetic_root, tmp_path, signal, exit_code):
    stopper = ["--trainer.callbacks+=helpers.SignalAt", "--trainer.callbacks.epoch=1", "--trainer.callbacks.batch=2"]
    stopper.append(f"--trainer.callbacks.signal={signal}")
    stopped = run_cli([*fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2"), *stopper], env=TESTS)
    assert stopped.returncode == exit_code, stopped.stderr[-2000:]
    (run,) = runs_in(tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] == 1 and saved["global_step"] > 0
    assert f"resume with: vmp-lightning fit --config {run / 'config.yaml'} --ckpt_path {last}" in stopped.stderr
    resumed = run_cli([*fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2"), f"--ckpt_path={last}"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(last, weights_only=True)["epoch"] == 1 and runs_in(tmp_path) == [run]


def test_a_resumed_run_continues_its_folder_and_wandb_run(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    save_dir = f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}"
    args = ["fit", *tiny_data_args(synthetic_root), save_dir, "--trainer.limit_val_batches=1", *QUIET]
    first = build_cli([*args, "--trainer.max_epochs=1"])
    run_id = first.trainer.logger.version
    run = Path(first.trainer.default_root_dir)
    assert run == tmp_path / "runs" / "vmp-lightning" / run_id and (run / "config.yaml").is_file()
    first.trainer.logger.experiment.finish()
    best_before = first.trainer.checkpoint_callback.best_model_path
    resumed = build_cli([*args, "--trainer.max_epochs=2", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"])
    assert resumed.trainer.logger.version == run_id and Path(resumed.trainer.default_root_dir) == run
    assert resumed.trainer.logger.experiment.resumed or resumed.trainer.logger.experiment.id == run_id
    assert resumed.trainer.checkpoint_callback.best_model_path in (
        best_before,
        *map(str, run.glob("checkpoints/epoch*")),
    )
    resumed.trainer.logger.experiment.finish()


def test_a_relative_ckpt_path_keeps_the_best_checkpoint_state(synthetic_root, tmp_path, monkeypatch):
    first = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1", *FROZEN))
    best = first.trainer.checkpoint_callback.best_model_path
    monkeypatch.chdir(tmp_path)
    last = Path(first.trainer.default_root_dir, "checkpoints", "last.ckpt").relative_to(tmp_path)
    resumed = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2", *FROZEN, f"--ckpt_path={last}"))
    assert resumed.trainer.checkpoint_callback.best_model_path == best  # val/acc1 never improved after epoch 0


def test_runs_without_a_logger_get_their_own_folders(synthetic_root, tmp_path):
    first = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1"))
    second = build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1"))
    folders = runs_in(tmp_path)
    assert len(folders) == 2 and {Path(first.trainer.default_root_dir), Path(second.trainer.default_root_dir)} == set(
        folders
    )
    for folder in folders:
        assert (folder / "config.yaml").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "config.yaml").exists()


def test_fast_dev_run_writes_no_checkpoint(synthetic_root, tmp_path):
    build_cli(fit_args(synthetic_root, tmp_path, "--trainer.fast_dev_run=2"))
    assert not list(tmp_path.glob("**/*.ckpt"))


@pytest.mark.parametrize("wandb", [True, False])
def test_test_and_predict_leave_the_fits_config_as_it_was(synthetic_root, tmp_path, monkeypatch, wandb):
    """The resume command reads config.yaml: evaluating a run's checkpoint must not rewrite it (nor write a config
    into the current folder when there is no run to write into)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = [f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}"] if wandb else ["--trainer.logger=false"]
    data = [*tiny_data_args(synthetic_root), *QUIET]
    fit = build_cli(["fit", *data, *logger, "--trainer.max_epochs=1", "--trainer.limit_val_batches=1"])
    run = Path(fit.trainer.default_root_dir)
    if wandb:
        fit.trainer.logger.experiment.finish()
    saved = (run / "config.yaml").read_bytes()
    last = run / "checkpoints" / "last.ckpt"
    for subcommand in ("test", "predict"):
        evaluated = build_cli([subcommand, *data, *logger, f"--ckpt_path={last}"])
        if wandb:
            evaluated.trainer.logger.experiment.finish()
        assert (run / "config.yaml").read_bytes() == saved, subcommand
        assert (run / f"config_{subcommand}.yaml").is_file()
    assert "max_epochs: 1" in saved.decode() and not list(tmp_path.glob("*.yaml"))
    outside = build_cli(["test", *data, "--trainer.logger=false", "--trainer.limit_test_batches=1"])
    assert Path(outside.trainer.default_root_dir) == tmp_path and not list(tmp_path.glob("*.yaml"))


def test_the_wandb_summary_holds_the_best_validation_accuracy(synthetic_root, tmp_path, monkeypatch):
    """A sweep optimises a run's best val/acc1, not its last epoch's: the summary's val/acc1 is W&B's max over
    the epochs (define_metric), val/acc1_best our running best, kept in the checkpoint for a resumed run."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setattr("vmp_lightning.cli.finish_wandb_runs", lambda trainer: None)  # its summary read here
    args = ["fit", *tiny_data_args(synthetic_root), *QUIET, f"--trainer.logger.init_args.save_dir={tmp_path}"]
    cli = build_cli([*args, "--trainer.max_epochs=3", "--model.optimizer.init_args.lr=0.5"])
    summary = cli.trainer.logger.experiment.summary
    best, last = summary["val/acc1"]["max"], cli.trainer.callback_metrics["val/acc1"].item()
    assert summary["val/acc1_best"] == pytest.approx(best) and best >= last
    saved = torch.load(Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["val_acc1_best"] == pytest.approx(best)
    cli.trainer.logger.experiment.finish()


def test_fits_in_one_slurm_job_get_their_own_runs_and_a_requeue_continues_each(synthetic_root, tmp_path, monkeypatch):
    """Two fits in one SLURM job: two folders (and W&B ids); requeued (SLURM_RESTART_COUNT 1), the job's first fit
    continues the first run from its last.ckpt and the second the second."""
    import vmp_lightning.runs as runs_module

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    first, second = (build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=1")) for _ in range(2))
    runs = [Path(c.trainer.default_root_dir) for c in (first, second)]
    assert runs[0] != runs[1] and runs_in(tmp_path) == sorted(runs)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setattr(runs_module, "_FITS_PLACED", 0)
    again = [build_cli(fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2")) for _ in range(2)]
    assert [Path(c.trainer.default_root_dir) for c in again] == runs
    steps = first.trainer.global_step
    assert all(c.trainer.current_epoch == 2 and c.trainer.global_step == 2 * steps for c in again)  # continued
    assert runs_in(tmp_path) == sorted(runs)


def test_the_processes_of_one_srun_step_agree_on_a_run_id_without_talking(tmp_path, monkeypatch):
    import vmp_lightning.runs as runs_module
    from vmp_lightning.runs import new_run_id

    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_STEP_ID", "3")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(runs_module, "_FITS_PLACED", 0)
    ids = [new_run_id(tmp_path), new_run_id(tmp_path)]
    assert ids == ["slurm-7-step3-0", "slurm-7-step3-1"]  # the same on every rank; each fit its own
    monkeypatch.setenv("WANDB_SWEEP_ID", "s1")
    monkeypatch.setenv("WANDB_RUN_ID", "trial9")
    assert new_run_id(tmp_path) == "trial9"  # a W&B agent's trial keeps the id the sweep gave it


@pytest.mark.slow
def test_submitits_time_limit_warning_stops_a_fit_at_a_saved_step(synthetic_root, tmp_path):
    """In a job submitted by the SLURM launcher, SIGUSR2 (sent before the time limit) stops like SIGTERM: the step
    is saved and the fit exits 143, for submitit to requeue it."""
    stopper = ["--trainer.callbacks+=helpers.SignalAt", "--trainer.callbacks.epoch=1", "--trainer.callbacks.batch=2"]
    stopper.append("--trainer.callbacks.signal=SIGUSR2")
    env = {**TESTS, "SUBMITIT_EXECUTOR": "slurm"}
    stopped = run_cli([*fit_args(synthetic_root, tmp_path, "--trainer.max_epochs=2"), *stopper], env=env)
    assert stopped.returncode == 128 + signal.SIGUSR2, stopped.stderr[-2000:]
    (run,) = runs_in(tmp_path)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 1 and saved["global_step"] == 6 + 3  # epoch 0's 6 batches, then 0, 1 and 2 of epoch 1


def test_a_run_folder_names_its_files_and_the_runs_of_a_save_dir_are_found_through_it(tmp_path):
    from vmp_lightning.runs import RunFolder

    run = RunFolder(tmp_path / "vmp-lightning" / "r1")
    run.checkpoints.mkdir(parents=True)
    run.config.write_text("{}\n")
    torch.save({"epoch": 0}, run.last)
    (tmp_path / "wandb" / "offline-run-1" / "files").mkdir(parents=True)  # W&B's folder beside the runs
    (tmp_path / "vmp-lightning" / "stray").mkdir()  # neither config, checkpoints nor metrics: not a run
    assert list(RunFolder.under(tmp_path)) == [run]
    assert RunFolder.of_checkpoint(run.last) == run and RunFolder.of_checkpoint(tmp_path / "x.ckpt") is None
    assert run.latest_state() == run.last
    hpc = run.path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"y")
    os.utime(hpc, (run.last.stat().st_mtime + 5,) * 2)
    assert run.latest_state() == run.last  # Lightning's mid-batch requeue checkpoint is never the state resumed
    assert run.stage_config("fit") == run.config and run.stage_config("test").name == "config_test.yaml"


def test_no_file_name_of_a_run_is_spelled_outside_runs_py():
    """In code, not prose: every string constant of the package that is not a docstring."""
    import ast

    names = (
        "last.ckpt",
        "config.yaml",
        "metrics.json",
        "val_videos.txt",
        "_predictions.csv",
        "slurm-job",
        "slurm_job_id",
    )
    source = Path(__file__).parents[1] / "src" / "vmp_lightning"
    spelled = []
    for path in source.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
            if text is not None and id(node) not in docstrings and " " not in text:  # not prose (messages, help)
                spelled += [
                    f"{path.name}:{node.lineno}: {n}" for n in names if n in node.value and path.name != "runs.py"
                ]
    assert spelled == []


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    from vmp_lightning.errors import UserError
    from vmp_lightning.lazy import import_optional

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    with pytest.raises(UserError, match=r"^the bayes sweep needs optuna: pip install 'vmp-lightning\[sweeps\]'$"):
        import_optional("optuna", "sweeps", "the bayes sweep")


def test_under_slurm_lightnings_own_requeue_is_off(synthetic_root, tmp_path, monkeypatch):
    """One requeue mechanism: `Preemption` stops at a saved step; Lightning's SIGUSR1 handler (which saves a
    mid-batch hpc_ckpt and requeues by itself) is never installed."""
    import helpers

    for name, value in {
        "SLURM_NTASKS": "1",
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NAME": "job",
        "SLURM_NODELIST": "vm",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    args = fit_args(
        synthetic_root, tmp_path, "--trainer.max_steps=1", "--trainer.callbacks+=helpers.RecordSignalHandlers"
    )
    build_cli(args)
    assert helpers.SEEN_HANDLERS["SIGUSR1"] in (signal.SIG_DFL, None)
