"""`NonFiniteGuard`: a NaN / Inf loss or gradient never reaches the weights. `VideoClassifier` asks it at three
points of a step (after the forward pass, before the optimizer step, before a checkpoint is written); every DDP rank
takes the same decision (one small all-reduce per step)."""

from __future__ import annotations

import math
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from vmp_lightning.callbacks import LatestCheckpoint
from vmp_lightning.errors import UserError
from vmp_lightning.internals import foreach_copy, foreach_norm

OnNonFinite = Literal["raise", "skip"]


class NonFiniteLossError(UserError, FloatingPointError):
    """Training met a non-finite loss (or weights); the message names the batch and the last checkpoint."""


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The module's trainer, or None when it has none (Lightning's ``module.trainer`` raises then)."""
    try:
        return module.trainer
    except RuntimeError:
        return None


def over_ranks(module: L.LightningModule, value: Tensor, reduce_op: Literal["max", "sum"]) -> Tensor:
    """The maximum (so all ranks take the same decision) or sum over the DDP ranks; the value itself outside a
    trainer."""
    trainer = attached_trainer(module)
    return trainer.strategy.reduce(value, reduce_op=reduce_op) if trainer is not None else value


class NonFiniteGuard:
    """``raise`` stops at a non-finite loss or gradient, naming the batch's videos and the last checkpoint;
    ``skip`` leaves such steps out (counted in ``skipped``). Either way the BatchNorm statistics the bad forward
    pass changed are put back. Warns once when the loss grows past 10x its first value."""

    def __init__(self, policy: OnNonFinite = "raise") -> None:
        self.policy, self.skipped = policy, 0
        self.first_loss: float | None = None
        self.warned_explosion = False
        self._snapshot: tuple[list[Tensor], list[Tensor]] | None = None

    def start(self) -> None:
        """At the start of training: the buffers are on their device now, `before_step` lists them anew."""
        self._snapshot = None

    def before_step(self, model: torch.nn.Module) -> None:
        """Copy the model's buffers (a forward pass changes BatchNorm statistics): listed once per run, refreshed
        with one foreach copy per step (listing and cloning them every step cost ~6 ms on X3D)."""
        if self._snapshot is None:
            buffers = list(model.buffers())
            self._snapshot = (buffers, [b.clone() for b in buffers])
        elif self._snapshot[0]:
            foreach_copy(self._snapshot[1], self._snapshot[0])

    def loss_is_usable(self, module: L.LightningModule, loss: Tensor, batch: dict) -> bool:
        """False (skip) or `NonFiniteLossError` (raise) for a non-finite loss; True otherwise."""
        state = torch.stack([(~torch.isfinite(loss.detach())).float(), torch.nan_to_num(loss.detach().float())])
        nonfinite, value = (float(v) for v in over_ranks(module, state, "max"))
        if nonfinite:
            if self._snapshot and self._snapshot[0]:
                foreach_copy(self._snapshot[0], self._snapshot[1])
            videos = ", ".join(map(str, batch.get("video_id", [])[:8]))
            where = f"epoch {module.current_epoch}, step {module.global_step}"
            if self.policy == "skip":
                self.skipped += 1
                rank_zero_warn(f"non-finite loss at {where} (videos {videos}): batch skipped")
                return False
            trainer = attached_trainer(module)
            callbacks = trainer.checkpoint_callbacks if trainer is not None else []
            saved = [c.best_model_path for c in callbacks if isinstance(c, LatestCheckpoint)]
            last = next((path for path in saved if path), "none yet")
            raise NonFiniteLossError(
                f"non-finite loss at {where}; batch videos: {videos}. The step was not taken; last checkpoint: "
                f"{last}. Look at these videos, lower the learning rate, or set model.on_nonfinite_loss: skip"
            )
        self._warn_on_explosion(module, value)
        return True

    def _warn_on_explosion(self, module: L.LightningModule, value: float) -> None:
        if self.first_loss is None:
            self.first_loss = value
        elif value > 10 * max(self.first_loss, math.log(module.model.num_classes)) and not self.warned_explosion:
            self.warned_explosion = True
            rank_zero_warn(
                f"training loss {value:.3g} at step {module.global_step} is over 10x the first step's "
                f"({self.first_loss:.3g}): is the learning rate too high?"
            )

    def check_gradients(self, module: L.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        """A finite loss can still give non-finite gradients (seen: bf16 on CPU, temporal convolutions on inputs
        shorter than their kernel, before `guard_short_clips`): stop before they reach the weights, or (``skip``)
        drop them, so the step changes nothing. A finite gradient whose norm overflows counts as non-finite."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if not grads or getattr(module.trainer.precision_plugin, "scaler", None) is not None:
            return  # 16-mixed: the gradient scaler skips overflowing steps itself, by design
        norms = torch.stack(foreach_norm(grads))
        if not over_ranks(module, (~torch.isfinite(norms)).any().float(), "max"):
            return
        names = {p: name for name, p in module.named_parameters()}
        bad = [names.get(p, "?") for p, norm in zip(params, norms, strict=True) if not torch.isfinite(norm)]
        where = f"non-finite gradients at epoch {module.current_epoch}, step {module.global_step} in {bad[:3]}"
        if self.policy == "skip":
            self.skipped += 1
            rank_zero_warn(f"{where}: step skipped")
            for p in params:
                p.grad = None  # optimizers leave parameters without a gradient alone
            return
        raise NonFiniteLossError(
            f"{where}; the weights are still finite (the step was not taken). With bf16 on a CPU try "
            "--trainer.precision 32; else lower the learning rate, or set model.on_nonfinite_loss: skip"
        )

    @staticmethod
    def check_checkpoint(checkpoint: dict) -> None:
        bad = [name for name, value in checkpoint["state_dict"].items() if not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteLossError(f"refusing to save a checkpoint with non-finite weights: {bad[:5]}")
