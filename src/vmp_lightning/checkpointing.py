"""Checkpoints written so that no kill, crash or full disk destroys the last good state, on any filesystem.

Lightning's own writer serialises into ``$TMPDIR`` and then moves the file onto the checkpoint: where ``$TMPDIR`` is
another filesystem (a tmpfs ``/tmp``, a run folder on NFS or a scratch disk: the usual cluster layout), that move is
a copy over the old file, and a kill or a full disk during it leaves a truncated ``last.ckpt``. `AtomicCheckpointIO`
writes beside the checkpoint instead (`files.atomic_write`: fsynced, then renamed), so the previous file stays whole
until the new one is complete.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vmp_lightning.errors import UserError
from vmp_lightning.files import atomic_write, remove_stale_partials


class CheckpointSpaceError(UserError, OSError):
    """The disk filled up while a checkpoint was written; the previous checkpoint is whole."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` that writes each checkpoint to a temporary file in its own folder and renames it onto
    the checkpoint when complete; a full disk is one line naming the folder and the size needed."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own way
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        try:
            with atomic_write(path) as partial, partial.open("wb") as handle:  # Python's writes: errors keep errno
                torch.save(checkpoint, handle)
        except (OSError, RuntimeError) as error:
            if not _no_space(error):
                raise
            raise CheckpointSpaceError(
                f"no space left in {path.parent} to write {path.name} (about {_size_mb(checkpoint):.0f} MB needed); "
                "the previous checkpoint is whole: free space there, then resume"
            ) from None


def _no_space(error: BaseException | None) -> bool:
    """Whether an error is, or was raised while handling, a full disk (torch's zip writer wraps it in a
    RuntimeError)."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _size_mb(checkpoint: object) -> float:
    """The bytes of the tensors a checkpoint holds, in MB (what its file needs, less a little metadata)."""
    if isinstance(checkpoint, torch.Tensor):
        return checkpoint.numel() * checkpoint.element_size() / 2**20
    if isinstance(checkpoint, dict):
        return sum(_size_mb(value) for value in checkpoint.values())
    if isinstance(checkpoint, (list, tuple)):
        return sum(_size_mb(value) for value in checkpoint)
    return 0.0


class AtomicCheckpoints(L.Callback):
    """Brought by the model: the trainer writes checkpoints with `AtomicCheckpointIO` (unless it was given a
    checkpoint plugin of its own), and the temporary files of writers killed on this host are removed from the
    checkpoint folders before the run goes on."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # the checkpoint callbacks know their folders now
            for callback in trainer.checkpoint_callbacks:
                if callback.dirpath and Path(callback.dirpath).is_dir():
                    remove_stale_partials(callback.dirpath)
