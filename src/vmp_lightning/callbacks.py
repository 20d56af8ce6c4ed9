"""Callbacks that `VideoClassifier` brings along (`configure_callbacks`), so a plain `Trainer` gets them too."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn


class BadVideoReporter(L.Callback):
    """Reports the videos the loader could not read and replaced (``data.on_bad_video: skip``): each file once,
    as a warning, and the count per epoch as ``data/bad_videos_<stage>``, summed over ranks."""

    def __init__(self) -> None:
        self.reported: set[str] = set()

    def _report(self, pl_module: L.LightningModule, batch: Any, stage: str) -> None:
        bad = [entry for entry in batch.get("bad_video", []) if entry] if isinstance(batch, dict) else []
        for entry in bad:
            if entry not in self.reported:
                self.reported.add(entry)
                rank_zero_warn(f"skipped unreadable video (replaced by the next one of the split): {entry}")
        count = torch.tensor(float(len(bad)), device=pl_module.device)
        pl_module.log(f"data/bad_videos_{stage}", count, on_step=False, on_epoch=True, reduce_fx="sum", sync_dist=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._report(pl_module, batch, "train")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._report(pl_module, batch, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._report(pl_module, batch, "test")
