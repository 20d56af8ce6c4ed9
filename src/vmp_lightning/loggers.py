"""Weights & Biases logging that works without an account (offline runs to sync later)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only


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

    ``WANDB_MODE`` (``online`` / ``offline`` / ``disabled``) still wins, as W&B users expect. ``id`` and
    ``resume`` go to ``wandb.init``: the CLI sets them so that a resumed fit continues its W&B run.
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = "runs",
        project: str = "vmp-lightning",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        offline: bool | None = None,
        log_model: bool | str = False,
        id: str | None = None,
        resume: str | None = None,
    ) -> None:
        mode = os.environ.get("WANDB_MODE")
        if offline is None:
            offline = mode in ("offline", "disabled") or (mode != "online" and not wandb_credentials_available())
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            name=name,
            save_dir=save_dir,
            project=project,
            entity=entity,
            group=group,
            tags=tags,
            offline=offline,
            log_model=log_model,
            id=id,
            **({"resume": resume} if resume else {}),
        )
        self.offline = offline
        self._sync_hint_shown = False

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
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def run_directory(trainer: L.Trainer) -> Path:
    """The folder of this run, where its checkpoints go and its config is saved (no collective calls)."""
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / str(logger.version)
    if logger is not None and getattr(logger, "log_dir", None):
        return Path(logger.log_dir)
    return Path(trainer.default_root_dir)
