"""`VideoClassifier`: trains a `PromptedModel` with the loss ``CE + lambda_v * V``; what is Lightning's job only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import lightning as L
import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveInt
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MaxMetric

from vmp_lightning.backbones.checkpoints import check_num_classes
from vmp_lightning.callbacks import BadVideoReporter, BatchSeeding, Preemption, PromptMedia, RunFacts
from vmp_lightning.checkpointing import AtomicCheckpoints
from vmp_lightning.errors import ConfigError
from vmp_lightning.evaluation import Aggregation, ClipScores, RunningAccuracy, evaluate, write_predictions
from vmp_lightning.internals import built_by_lightning_cli, logs_written_this_step
from vmp_lightning.loggers import run_directory
from vmp_lightning.migration import migrate_state_dict, up_to_date_source
from vmp_lightning.model import PromptedModel, build_backbone
from vmp_lightning.nonfinite import NonFiniteGuard, OnNonFinite, attached_trainer, over_ranks
from vmp_lightning.optim import build_optimizer, follow_run_length, run_epochs
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


def lambda_v_problem(lambda_v: float, vmp: bool, num_frames: int) -> str | None:
    """What is wrong with ``lambda_v`` for this model, or None."""
    if lambda_v < 0:
        return f"lambda_v must be >= 0 (lambda_v={lambda_v})"
    if lambda_v > 0 and not vmp:
        return f"lambda_v weights the motion prompt's V term, but vmp is off (lambda_v={lambda_v})"
    if lambda_v > 0 and num_frames < 2:
        return f"lambda_v {lambda_v} needs model.num_frames >= 2: V compares consecutive attention maps"
    return None


class VideoClassifier(L.LightningModule):
    """Trains a `PromptedModel` (backbone + optional motion prompts) for video classification.

    Args:
        backbone: ``backbone(num_classes) -> nn.Module`` on ``B x 3 x T x H x W``; in YAML a ``class_path`` (given
            ``num_frames`` too when it takes it). ``num_classes`` is linked from the data by the CLI.
        num_frames: T; the data samples `PromptedModel.frames_per_clip` (T, or T+1 with VMPs), linked by the CLI.
        lambda_v, v_reduction: weight of the temporal attention variation V in the loss (0: V is not computed) and
            how its sum of squares is averaged (`temporal_variation`).
        optimizer, lr_scheduler, prompt_lr_scale, prompt_weight_decay, bn_weight_decay: see `build_optimizer`
            (None: the optimizer's; PySlowFast trains SlowFast and X3D with ``bn_weight_decay`` 0). No optimizer:
            AdamW with torch's defaults (a class as the default would lend its settings to the class a config names,
            jsonargparse keeping init args whose names agree).
        train_backbone, train_head, train_prompt: what is trained (`PromptedModel.set_trainable`).
        aggregation: how the views of a test video are combined (``sum_logits`` or ``mean_softmax``); evaluation
            is exact under DDP, the test writes predictions into the run folder.
        init_checkpoint, checkpoint_min_match: weights to start from (`PromptedModel.load_pretrained`).
        on_nonfinite_loss: ``raise`` or ``skip`` a step whose loss or gradients are NaN / Inf (`NonFiniteGuard`).
        **model_settings: `PromptedModel`'s: ``vmp`` (one switch: the data samples the extra frame), ``vmp_sites``,
            ``share_prompt``, ``pn``, ``normalization``, ``reference_luma``, ``head``.
    """

    def __init__(
        self,
        backbone: Callable[[int], nn.Module],
        num_classes: int,
        num_frames: PositiveInt = 8,
        lambda_v: NonNegativeFloat = 0.0,
        v_reduction: VReduction = "mean",
        optimizer: OptimizerCallable | None = None,
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
        on_nonfinite_loss: OnNonFinite = "raise",
        **model_settings: Any,
    ) -> None:
        super().__init__()
        # Under LightningCLI every argument is saved as its config, so `--ckpt_path` and `load_from_checkpoint`
        # can rebuild the model; built in Python, objects such as a backbone lambda cannot be saved.
        self.save_hyperparameters(
            ignore=[] if built_by_lightning_cli() else ["backbone", "pn", "optimizer", "lr_scheduler"]
        )
        if problem := lambda_v_problem(lambda_v, bool(model_settings.get("vmp")), num_frames):
            raise ConfigError(problem)
        net = build_backbone(backbone, num_classes, num_frames)
        self.model = PromptedModel(net, num_classes, num_frames, **model_settings)
        self.optimizer_factory, self.scheduler_factory = optimizer or torch.optim.AdamW, lr_scheduler
        self.checkpoint_report = None
        if init_checkpoint and not _RESTORING.get():
            self.checkpoint_report = self.model.load_pretrained(init_checkpoint, checkpoint_min_match)
            rank_zero_info(self.checkpoint_report.summary())
        self.model.set_trainable(train_backbone, train_head, train_prompt)
        self.train_accuracy = RunningAccuracy(num_classes)
        self.guard = NonFiniteGuard(on_nonfinite_loss)
        # The best val/acc1 so far, logged as val/acc1_best (what sweeps optimise), kept in checkpoints under their
        # own key "val_acc1_best" (the state dict stays the model's); identical on every rank: no sync.
        self.val_acc1_best = MaxMetric(sync_on_compute=False)
        self.eval_scores = {"val": ClipScores(), "test": ClipScores()}

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path | IO, *args: Any, **kwargs: Any) -> VideoClassifier:
        """Lightning's, also for earlier versions' checkpoints; ``init_checkpoint`` is not read (the weights are in)."""
        with restoring_from_checkpoint():
            return super().load_from_checkpoint(up_to_date_source(checkpoint_path), *args, **kwargs)

    def forward(self, clip: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.model(clip)  # logits, and the attention maps of each prompted site (none without VMPs)

    def configure_callbacks(self) -> list[L.Callback]:
        callbacks: list[L.Callback] = [
            AtomicCheckpoints(),
            BadVideoReporter(),
            BatchSeeding(),
            Preemption(),
            PromptMedia(),
            RunFacts(),
        ]
        if self.trainer.loggers:  # the monitor refuses a run without a logger
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        present = {type(c) for c in self.trainer.callbacks}  # a test after the fit: already there
        return [c for c in callbacks if type(c) not in present]

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = build_optimizer(
            self.model, self.optimizer_factory, hp.get("bn_weight_decay"), hp.prompt_lr_scale, hp.prompt_weight_decay
        )
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        follow_run_length(scheduler, self._run_epochs())
        # named "lr", LearningRateMonitor logs each group as lr/backbone, lr/prompt
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "name": "lr"}}

    def setup(self, stage: str) -> None:
        """The data must deliver the clips this model takes: a data module built for another clip contract (by hand,
        or for another checkpoint) is refused naming both, before any video is read."""
        datamodule = getattr(attached_trainer(self), "datamodule", None)
        frames = getattr(datamodule, "frames_per_clip", None)
        if frames is not None and frames != self.model.frames_per_clip:
            vmp = " + 1 for the motion prompt" if self.model.frames_per_clip != self.model.num_frames else ""
            raise ConfigError(
                f"the model takes clips of {self.model.frames_per_clip} frames (num_frames {self.model.num_frames}"
                f"{vmp}), the data module samples {frames} (data.frames_per_clip): build the data for this model"
            )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_num_classes(checkpoint, self.model.num_classes)
        checkpoint["state_dict"] = migrate_state_dict(checkpoint["state_dict"])
        if "val_acc1_best" in checkpoint:
            self.val_acc1_best.reset()
            self.val_acc1_best.update(checkpoint["val_acc1_best"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.guard.check_checkpoint(checkpoint)
        best = self.val_acc1_best
        checkpoint["val_acc1_best"] = float(best.compute()) if best.update_called else float("-inf")

    def on_train_start(self) -> None:
        self.guard.start()
        for config in self.trainer.lr_scheduler_configs:  # restored from a checkpoint of a shorter or longer run
            follow_run_length(config.scheduler, self._run_epochs())

    def _run_epochs(self) -> int | None:
        """The epochs this run trains for, when its length is set in epochs (not steps)."""
        trainer = attached_trainer(self)
        return run_epochs(trainer.max_epochs, trainer.max_steps) if trainer is not None else None

    def on_train_epoch_start(self) -> None:
        self.train_accuracy.reset(self.device)

    def on_train_epoch_end(self) -> None:
        """The epoch's training accuracy over all ranks (before the checkpoint callbacks that may monitor it)."""
        accuracy = self.train_accuracy.compute(lambda counts: over_ranks(self, counts, "sum"))
        self.log_dict({f"train/{name}": value for name, value in accuracy.items()})

    def _loss(self, batch: dict, stage: str) -> tuple[Tensor, Tensor]:
        """Logits and ``CE + lambda_v * V`` of a batch, logging the terms."""
        logits, attention = self(batch["video"])
        loss = ce = F.cross_entropy(logits.float(), batch["label"])
        train = stage == "train"
        log = {"on_step": train, "on_epoch": True, "batch_size": len(batch["label"]), "sync_dist": not train}
        if attention and self.hparams.lambda_v > 0:
            variation = sum(temporal_variation(maps, self.hparams.v_reduction) for maps in attention.values())
            loss = ce + self.hparams.lambda_v * variation
            self.log(f"{stage}/V", variation, **log)
        self.log(f"{stage}/ce", ce, **log)
        self.log(f"{stage}/loss", loss, prog_bar=stage != "test", **log)
        return logits, loss

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        self.guard.before_step(self.model)
        logits, loss = self._loss(batch, "train")
        if not self.guard.loss_is_usable(self, loss, batch):
            return None  # on_nonfinite_loss: skip; Lightning then skips backward and the optimizer step
        self.train_accuracy.update(logits, batch["label"])
        trainer = attached_trainer(self)  # step values only on the steps written
        if trainer is None or logs_written_this_step(trainer) or bool(trainer.fast_dev_run):
            values = {f"prompt/{name}": value for name, value in self.model.prompt_values().items()}
            self.log_dict(values, on_step=True, on_epoch=False, batch_size=1)  # equal on all ranks: no sync needed
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.guard.check_gradients(self, optimizer)

    def _eval_step(self, batch: dict, stage: str) -> None:
        views = batch.get("view", torch.zeros_like(batch["label"]))
        self.eval_scores[stage].update(batch["video_id"], views, batch["label"], self._loss(batch, stage)[0])

    def _eval_epoch_end(self, stage: str) -> None:
        clips = self.eval_scores[stage].gathered()
        self.eval_scores[stage].clear()
        if not clips.video_ids:
            return
        result = evaluate(clips, self.model.num_classes, self.hparams.aggregation)
        # Identical on every rank (computed from the gathered scores), so no further reduction is needed.
        metrics = {f"{stage}/{name}": value for name, value in result.metrics().items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=False, rank_zero_only=False)
        if stage == "val" and not self.trainer.sanity_checking:
            self.val_acc1_best.update(metrics["val/acc1"])
            self.log("val/acc1_best", self.val_acc1_best.compute(), sync_dist=False, rank_zero_only=False)
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
