"""Weights & Biases logging that works without an account (offline runs to sync later); the run folder and its
``metrics.json``."""

from __future__ import annotations

import json
import netrc
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from vmp_lightning.files import write_text
from vmp_lightning.internals import drop_wandb_init_keyword, wandb_run_started
from vmp_lightning.runs import RUN_ID_VARIABLE, RunFolder


def wandb_credentials_available() -> bool:
    """True when W&B can log online: ``WANDB_API_KEY`` is set or ``~/.netrc`` holds a key for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class AutoWandbLogger(WandbLogger):
    """`WandbLogger` that goes offline by itself when no W&B account is configured (``offline=None``).

    ``WANDB_MODE`` (``online`` / ``offline`` / ``disabled``) still wins, as W&B users expect (Lightning's own
    logger turns ``disabled`` into an offline run). ``id`` and ``resume`` go to ``wandb.init``: the CLI sets them so
    that a resumed fit, and a test of its checkpoint, continue its W&B run. ``init_options`` passes any further
    ``wandb.init`` keyword (``settings``, ``config_exclude_keys``, ...); ``log_model`` uploads checkpoints as
    artifacts (online only: an offline run cannot).
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = "runs",
        project: str = "vmp-lightning",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        job_type: str | None = None,
        offline: bool | None = None,
        log_model: bool | str = False,
        id: str | None = None,
        resume: str | None = None,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        mode = os.environ.get("WANDB_MODE")
        if offline is None:
            offline = mode == "offline" or (mode not in ("online", "disabled") and not wandb_credentials_available())
        extra = dict(init_options or {})
        if mode == "disabled":
            offline, extra["mode"] = False, "disabled"
        if offline and log_model:
            rank_zero_warn("W&B runs offline: checkpoints are not uploaded as artifacts (log_model ignored)")
            log_model = False
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            name=name,
            save_dir=save_dir,
            project=project,
            entity=entity,
            group=group,
            tags=tags,
            notes=notes,
            job_type=job_type,
            offline=offline,
            log_model=log_model,
            id=id,
            **({"resume": resume} if resume else {}),
            **extra,
        )
        # Lightning 2.6 hands wandb.init ``anonymous=None`` whatever it is given; wandb >= 0.19 warns at every start
        # that the setting has no effect. Not passed at all, it says nothing.
        drop_wandb_init_keyword(self, "anonymous")
        self.offline = offline
        self._sync_hint_shown = False

    @property
    def experiment(self) -> Any:
        """The W&B run; its summary holds the best ``val/acc1`` and ``val/acc5`` (not the last epoch's)."""
        run = super().experiment
        if not getattr(self, "_best_defined", False) and hasattr(run, "define_metric"):
            for name in ("val/acc1", "val/acc5"):  # val/acc1_best is the best already: its last value
                run.define_metric(name, summary="max")
            self._best_defined = True
        return run

    def upload(self, path: Path) -> None:
        """Attach a file of the run folder (the resolved config, the metrics) to the W&B run: copied into the run's
        files (W&B's own ``save`` links to the original, and an offline run copied to another machine to sync would
        lose it), under the run id, since W&B keeps its own config.yaml there."""
        if os.environ.get("WANDB_MODE") != "disabled":
            copy = Path(self.experiment.dir) / path.parent.name / path.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            self.experiment.save(str(copy), base_path=self.experiment.dir, policy="now")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self.offline and self._experiment is not None and os.environ.get("WANDB_MODE") != "disabled":
            if self._sync_hint_shown:
                return
            self._sync_hint_shown = True
            run_folder = Path(self._experiment.dir).parent
            rank_zero_info(
                f"W&B ran offline (no account configured). Upload this run later with: wandb sync {run_folder}"
            )


def finish_wandb_runs(trainer: L.Trainer) -> None:
    """Close the W&B runs of a trainer, so that the next trainer in the same process starts a new run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and wandb_run_started(logger):
            logger.experiment.finish()


def run_directory(trainer: L.Trainer) -> Path:
    """The folder of this run, where its checkpoints go and its config is saved (no collective calls)."""
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / str(logger.version)
    if logger is not None and getattr(logger, "log_dir", None):
        return Path(logger.log_dir)
    return Path(trainer.default_root_dir)


def write_run_metrics(
    trainer: L.Trainer, val: dict[str, float], test: dict[str, float], tested: str | None = None
) -> Path | None:
    """``metrics.json`` in the run folder: the last validation and the test metrics, the checkpoint tested (the
    best on ``monitor``, or ``last.ckpt`` when nothing is monitored) and its score, the epochs and steps done, the
    split the test metrics come from, and the W&B run (what the harness's tables read). Rank zero only."""
    if not trainer.is_global_zero:
        return None
    callback = trainer.checkpoint_callback
    wandb_logger = next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
    url = None
    online = wandb_logger is not None and not getattr(wandb_logger, "offline", False)
    if online and wandb_run_started(wandb_logger):  # an offline run has none (W&B warns when asked)
        url = getattr(wandb_logger.experiment, "url", None)
    best = getattr(callback, "best_model_score", None)
    record = {
        "run_id": os.environ.get(RUN_ID_VARIABLE),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "best_checkpoint": (tested if tested is not None else getattr(callback, "best_model_path", "")) or None,
        "best_score": None if best is None else float(best),
        "monitor": getattr(callback, "monitor", None),
        "test_split": getattr(trainer.datamodule, "test_split", "test") if test else None,
        "val": val,
        "test": test,
        "wandb_url": url,
    }
    folder = run_directory(trainer)
    folder.mkdir(parents=True, exist_ok=True)
    path = RunFolder(folder).metrics
    write_text(path, json.dumps(record, indent=1))
    rank_zero_info(f"Run metrics written to {path}")
    if isinstance(wandb_logger, AutoWandbLogger) and wandb_run_started(wandb_logger):
        wandb_logger.upload(path)
    return path
