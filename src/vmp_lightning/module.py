"""`VideoClassifier`: trains a `PromptedModel` with the loss ``CE + lambda_v * V``; what is Lightning's job only."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from vmp_lightning.backbones.checkpoints import CheckpointMismatchError
from vmp_lightning.callbacks import BadVideoReporter, LatestCheckpoint
from vmp_lightning.evaluation import Aggregation, ClipScores, RunningAccuracy, evaluate, write_predictions
from vmp_lightning.loggers import run_directory
from vmp_lightning.model import PromptedModel
from vmp_lightning.prompt import VReduction, temporal_variation

_RESTORING = ContextVar("restoring_from_checkpoint", default=False)


@contextmanager
def restoring_from_checkpoint() -> Iterator[None]:
    """Models built inside come from a checkpoint that holds their trained weights: they skip ``init_checkpoint``
    (whose file need not exist on this machine)."""
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def _built_by_cli() -> bool:
    """True while LightningCLI instantiates the module (it then supplies the config as hyper-parameters)."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    return _given_hyperparameters.get() is not None


class NonFiniteLossError(FloatingPointError):
    """Training met a non-finite loss (or weights); the message names the batch and the last checkpoint."""


class VideoClassifier(L.LightningModule):
    """Trains a `PromptedModel` (backbone + optional motion prompts) for video classification.

    Args:
        backbone: ``backbone(num_classes) -> nn.Module`` mapping ``B x 3 x T x H x W`` to logits; in YAML a
            ``class_path`` whose first argument is ``num_classes``.
        num_classes: linked from the data module by the CLI.
        lambda_v: weight of the temporal attention variation V in the loss; 0 skips computing V.
        v_reduction: how V's sum of squares is averaged (see `temporal_variation`).
        optimizer, lr_scheduler: LightningCLI callables; the prompt gets its own param group ``prompt``.
        prompt_lr_scale, prompt_weight_decay: that group's lr multiplier and weight decay (None: the optimizer's);
            the defaults are the reference code's (same lr and weight decay as the backbone).
        bn_weight_decay: weight decay of BatchNorm weights and biases, in their own param group ``bn`` (None: the
            optimizer's); PySlowFast trains SlowFast and X3D with 0 (``BN.WEIGHT_DECAY``).
        train_backbone, train_head, train_prompt: what is trained; a frozen backbone stays in eval mode
            (BatchNorm statistics and dropout fixed) except for its head and the head's dropout.
        aggregation: how the views of a test video are combined (``sum_logits`` or ``mean_softmax``); evaluation
            is exact under DDP (`vmp_lightning.evaluation`), the test writes predictions into the run folder.
        init_checkpoint, checkpoint_min_match: weights to start from (see `PromptedModel.load_pretrained`).
        on_nonfinite_loss: ``raise`` stops at a NaN / Inf training loss, naming the batch's videos, before it
            reaches the weights; ``skip`` leaves such batches out (counted in ``skipped_batches``).
        **model_settings: `PromptedModel`'s: ``vmp`` (linked to the data's extra frame), ``vmp_sites``,
            ``share_prompt``, ``pn``, ``normalization`` (linked from the data), ``reference_luma``, ``head``.
    """

    def __init__(
        self,
        backbone: Callable[[int], nn.Module],
        num_classes: int,
        lambda_v: NonNegativeFloat = 0.0,
        v_reduction: VReduction = "mean",
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        prompt_lr_scale: float = 1.0,
        prompt_weight_decay: float | None = None,
        bn_weight_decay: float | None = None,
        train_backbone: bool = True,
        train_head: bool = True,
        train_prompt: bool = True,
        aggregation: Aggregation = "sum_logits",
        init_checkpoint: str | None = None,
        checkpoint_min_match: float = 0.5,
        on_nonfinite_loss: Literal["raise", "skip"] = "raise",
        **model_settings: Any,
    ) -> None:
        super().__init__()
        if "v_normalization" in model_settings:  # v_reduction's name in checkpoints of version 0.1
            v_reduction = model_settings.pop("v_normalization")
        # Under LightningCLI every argument is saved as its config, so `--ckpt_path` and `load_from_checkpoint`
        # can rebuild the model; built in Python, objects such as a backbone lambda cannot be saved.
        self.save_hyperparameters(ignore=[] if _built_by_cli() else ["backbone", "pn", "optimizer", "lr_scheduler"])
        self.hparams.pop("v_normalization", None)
        self.hparams["v_reduction"] = v_reduction
        if lambda_v < 0:
            raise ValueError(f"lambda_v must be >= 0, got {lambda_v}")
        if lambda_v > 0 and not model_settings.get("vmp"):
            raise ValueError(f"lambda_v={lambda_v} weights the motion prompt's V term, but vmp is off")
        self.model = PromptedModel(backbone(num_classes), num_classes, **model_settings)
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.checkpoint_report = None
        if init_checkpoint and not _RESTORING.get():
            self.checkpoint_report = self.model.load_pretrained(init_checkpoint, checkpoint_min_match)
            rank_zero_info(self.checkpoint_report.summary())
        self.model.requires_grad_(train_backbone)
        self.model.head.requires_grad_(train_head)
        self.model.prompts.requires_grad_(train_prompt)
        self.train_accuracy = RunningAccuracy(num_classes)
        self.first_loss: float | None = None
        self.warned_explosion, self.skipped_batches = False, 0
        self.eval_scores = {"val": ClipScores(), "test": ClipScores()}

    @classmethod
    def load_from_checkpoint(cls, *args: Any, **kwargs: Any) -> VideoClassifier:  # type: ignore[override]
        """Lightning's, without re-reading ``init_checkpoint``: the checkpoint holds the weights."""
        with restoring_from_checkpoint():
            return super().load_from_checkpoint(*args, **kwargs)

    def forward(self, clip: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the attention maps of each prompted site (empty without VMPs)."""
        return self.model(clip)

    def train(self, mode: bool = True) -> VideoClassifier:
        """A frozen backbone runs in eval mode (BatchNorm statistics and dropout fixed) except for its head and the
        head's dropout, which regularises the head being trained as it does in a full fine-tune."""
        super().train(mode)
        if mode and not self.hparams.train_backbone:
            self.model.backbone.eval()
            self.model.head.train()
            for dropout in self.model.head_dropout():
                dropout.train()
        return self

    def configure_callbacks(self) -> list[L.Callback]:
        callbacks: list[L.Callback] = [BadVideoReporter()]
        if self.trainer.loggers:  # the monitor refuses a run without a logger
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        present = {type(c) for c in self.trainer.callbacks}  # a test after the fit: already there
        return [c for c in callbacks if type(c) not in present]

    def on_train_epoch_start(self) -> None:
        """With a seed, each epoch's randomness (shuffling, augmentation, dropout) starts from ``seed + epoch``, so
        a run resumed from an epoch's checkpoint continues exactly as the uninterrupted run did. The epoch's
        training accuracy starts counting anew."""
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is not None:
            value = int(seed) + self.current_epoch
            random.seed(value)
            np.random.seed(value % 2**32)
            torch.manual_seed(value)
        self.train_accuracy.reset(self.device)

    def on_train_epoch_end(self) -> None:
        """The epoch's training accuracy, counted over all ranks (before the checkpoint callbacks that may
        monitor it)."""
        accuracy = self.train_accuracy.compute(lambda counts: self._over_ranks(counts, "sum"))
        self.log_dict({f"train/{name}": value for name, value in accuracy.items()})

    def configure_optimizers(self):
        """Param groups ``backbone``, ``bn`` (with ``bn_weight_decay``) and ``prompt``, each only when it has
        trainable parameters; the optimizer's settings, then each group's own."""
        group_of = {id(p): "prompt" for p in self.model.prompts.parameters()}
        if self.hparams.get("bn_weight_decay") is not None:
            for module in self.model.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._NormBase):
                    group_of.update({id(p): "bn" for p in module.parameters(recurse=False)})
        trainable = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": params, "name": name}
            for name in ("backbone", "bn", "prompt")
            if (params := [p for p in trainable if group_of.get(id(p), "backbone") == name])
        ]
        optimizer = self.optimizer_factory(groups)
        for group in optimizer.param_groups:
            if group["name"] == "bn":
                group["weight_decay"] = self.hparams.bn_weight_decay
            if group["name"] == "prompt":
                group["lr"] *= self.hparams.prompt_lr_scale
                if self.hparams.prompt_weight_decay is not None:
                    group["weight_decay"] = self.hparams.prompt_weight_decay
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        epochs = self.trainer.max_epochs if self._trainer is not None and self.trainer.max_steps == -1 else None
        if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and epochs and scheduler.T_max != epochs:
            # One setting, not two kept equal by hand: a sweep over epochs must not break the schedule.
            rank_zero_info(f"lr_scheduler.T_max {scheduler.T_max} -> {epochs}: the cosine follows trainer.max_epochs")
            scheduler.T_max = epochs
        # named "lr", LearningRateMonitor logs each group as lr/backbone, lr/prompt
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "name": "lr"}}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint for another number of classes is a clear error; checkpoints of version 0.1 held the backbone
        and the prompts at the top of the state dict."""
        trained_for = checkpoint.get("hyper_parameters", {}).get("num_classes")
        if trained_for is not None and trained_for != self.model.num_classes:
            raise CheckpointMismatchError(
                f"the checkpoint was trained for {trained_for} classes, the data has {self.model.num_classes}: "
                "wrong checkpoint or dataset? (to fine-tune it on this dataset, pass it as model.init_checkpoint, "
                "which re-initialises the head, instead of --ckpt_path)"
            )
        state = checkpoint["state_dict"]
        if any(key.startswith(("backbone.", "prompts.")) for key in state):
            checkpoint["state_dict"] = {f"model.{key}": value for key, value in state.items()}

    def on_fit_start(self) -> None:
        logged: dict[str, Any] = {}
        if self.checkpoint_report is not None:
            logged = {f"init_checkpoint/{k}": v for k, v in self.checkpoint_report.counts().items()}
            logged["init_checkpoint/fraction"] = self.checkpoint_report.fraction
        batch = getattr(self.trainer.datamodule, "batch_size", None)
        if batch:  # what the learning rate is tuned for: processes x batch x accumulation
            processes, accumulate = self.trainer.world_size, self.trainer.accumulate_grad_batches
            logged["effective_batch_size"] = processes * batch * accumulate
            rank_zero_info(
                f"effective batch {logged['effective_batch_size']} = {processes} process{'es' * (processes > 1)} x "
                f"batch {batch} x {accumulate} accumulated"
            )
        if self.logger is not None and logged:
            self.logger.log_hyperparams(logged)

    def _loss(self, batch: dict, stage: str) -> tuple[Tensor, Tensor]:
        """Logits and ``CE + lambda_v * V`` of a batch, logging the terms."""
        logits, attention = self(batch["video"])
        ce = F.cross_entropy(logits.float(), batch["label"])
        loss = ce
        train = stage == "train"
        log = {"on_step": train, "on_epoch": True, "batch_size": len(batch["label"]), "sync_dist": not train}
        if attention and self.hparams.lambda_v > 0:
            variation = sum(temporal_variation(maps, self.hparams.v_reduction) for maps in attention.values())
            loss = ce + self.hparams.lambda_v * variation
            self.log(f"{stage}/V", variation, **log)
        self.log(f"{stage}/ce", ce, **log)
        self.log(f"{stage}/loss", loss, prog_bar=stage != "test", **log)
        return logits, loss

    def on_train_start(self) -> None:
        self._snapshot = None  # the buffers are on their device now: `_snapshot_buffers` takes them anew

    def _snapshot_buffers(self) -> tuple[list[Tensor], list[Tensor]]:
        """The model's buffers (BatchNorm statistics: a forward changes them) and a copy of them, listed once per
        run (`on_train_start`: after the move to the device) and refreshed with one foreach copy per step (listing
        and cloning them every step cost ~6 ms on X3D)."""
        snapshot = getattr(self, "_snapshot", None)
        if snapshot is None:
            buffers = list(self.model.buffers())
            snapshot = self._snapshot = (buffers, [b.clone() for b in buffers])
        elif snapshot[0]:
            torch._foreach_copy_(snapshot[1], snapshot[0])
        return snapshot

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        buffers = self._snapshot_buffers()
        logits, loss = self._loss(batch, "train")
        if not self._loss_is_usable(loss, batch, buffers):
            return None  # on_nonfinite_loss: skip; Lightning then skips backward and the optimizer step
        self.train_accuracy.update(logits, batch["label"])
        if self._logs_this_step():  # step-level only: each self.log costs ~0.2-2 ms, most steps write nothing
            values = {f"prompt/{name}": value for name, value in self.model.prompt_values().items()}
            self.log_dict(values, on_step=True, on_epoch=False, batch_size=1)  # equal on all ranks: no sync needed
        return loss

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes this training step's step-level values (every ``trainer.log_every_n_steps``
        steps, each step of a ``fast_dev_run``); always outside a trainer."""
        connector = getattr(self._trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs or bool(self.trainer.fast_dev_run)

    def _loss_is_usable(self, loss: Tensor, batch: dict, buffers: tuple[list[Tensor], list[Tensor]]) -> bool:
        """Stop at (or skip) a non-finite loss before it reaches the weights (the BatchNorm statistics its forward
        pass changed are put back); warn once when the loss explodes. One small all-reduce per step, so every DDP
        rank takes the same decision."""
        state = torch.stack([(~torch.isfinite(loss.detach())).float(), torch.nan_to_num(loss.detach().float())])
        nonfinite, value = (float(v) for v in self._over_ranks(state, "max"))
        if nonfinite:
            if buffers[0]:
                torch._foreach_copy_(buffers[0], buffers[1])
            videos = ", ".join(map(str, batch.get("video_id", [])[:8]))
            where = f"epoch {self.current_epoch}, step {self.global_step}"
            if self.hparams.get("on_nonfinite_loss", "raise") == "skip":
                self.skipped_batches += 1
                rank_zero_warn(f"non-finite loss at {where} (videos {videos}): batch skipped")
                return False
            callbacks = self.trainer.checkpoint_callbacks if self._trainer is not None else []
            saved = [c.best_model_path for c in callbacks if isinstance(c, LatestCheckpoint)]
            last = next((path for path in saved if path), "none yet")
            raise NonFiniteLossError(
                f"non-finite loss at {where}; batch videos: {videos}. The step was not taken; last checkpoint: "
                f"{last}. Look at these videos, lower the learning rate, or set model.on_nonfinite_loss: skip"
            )
        if self.first_loss is None:
            self.first_loss = value
        elif value > 10 * max(self.first_loss, math.log(self.model.num_classes)) and not self.warned_explosion:
            self.warned_explosion = True
            rank_zero_warn(
                f"training loss {value:.3g} at step {self.global_step} is over 10x the first step's "
                f"({self.first_loss:.3g}): is the learning rate too high?"
            )
        return True

    def _over_ranks(self, value: Tensor, reduce_op: Literal["max", "sum"]) -> Tensor:
        """The maximum (so all ranks take the same decision) or sum over the DDP ranks; the value itself outside a
        trainer."""
        return self.trainer.strategy.reduce(value, reduce_op=reduce_op) if self._trainer is not None else value

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """A finite loss can still give non-finite gradients (seen: bf16 on CPU, temporal convolutions on inputs
        shorter than their kernel, before `guard_short_clips`): stop before they reach the weights, or (``skip``)
        drop them, so the step changes nothing. A finite gradient whose norm overflows counts as non-finite."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if not grads or getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            return  # 16-mixed: the gradient scaler skips overflowing steps itself, by design
        norms = torch.stack(torch._foreach_norm(grads))
        if not self._over_ranks((~torch.isfinite(norms)).any().float(), "max"):
            return
        names = {p: name for name, p in self.named_parameters()}
        bad = [names.get(p, "?") for p, norm in zip(params, norms, strict=True) if not torch.isfinite(norm)]
        where = f"non-finite gradients at epoch {self.current_epoch}, step {self.global_step} in {bad[:3]}"
        if self.hparams.get("on_nonfinite_loss", "raise") == "skip":
            self.skipped_batches += 1
            rank_zero_warn(f"{where}: step skipped")
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None  # optimizers leave parameters without a gradient alone
            return
        raise NonFiniteLossError(
            f"{where}; the weights are still finite (the step was not taken). With bf16 on a CPU try "
            "--trainer.precision 32; else lower the learning rate, or set model.on_nonfinite_loss: skip"
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        bad = [name for name, value in checkpoint["state_dict"].items() if not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteLossError(f"refusing to save a checkpoint with non-finite weights: {bad[:5]}")

    def _eval_step(self, batch: dict, stage: str) -> None:
        logits, _ = self._loss(batch, stage)
        views = batch.get("view", torch.zeros_like(batch["label"]))
        self.eval_scores[stage].update(batch["video_id"], views, batch["label"], logits)

    def _eval_epoch_end(self, stage: str) -> None:
        clips = self.eval_scores[stage].gathered()
        self.eval_scores[stage].clear()
        if not clips.video_ids:
            return
        result = evaluate(clips, self.model.num_classes, self.hparams.aggregation)
        # Identical on every rank (computed from the gathered scores), so no further reduction is needed.
        metrics = {f"{stage}/{name}": value for name, value in result.metrics().items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=False, rank_zero_only=False)
        if stage == "test" and self.trainer.is_global_zero:
            names = getattr(self.trainer.datamodule, "class_names", None)
            path = write_predictions(run_directory(self.trainer), stage, result, names)
            rank_zero_info(f"Test predictions written to {path}")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        logits, _ = self(batch["video"])
        views = batch.get("view", torch.zeros_like(batch["label"]))
        return {"video_id": batch["video_id"], "view": views, "label": batch["label"], "logits": logits.float()}
