"""The optimizer of a `PromptedModel`: param groups ``backbone``, ``bn`` and ``prompt``, each with its own settings;
a cosine schedule that follows the run's length; the accumulation that makes a recipe's global batch."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from vmp_lightning.errors import ConfigError
from vmp_lightning.model import PromptedModel

#: The class path of the schedule that follows the run's length.
COSINE = "torch.optim.lr_scheduler.CosineAnnealingLR"

#: The layers whose running statistics and affine parameters ``bn_weight_decay`` applies to.
NORMALIZATION_LAYERS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def build_optimizer(
    model: PromptedModel,
    factory: Callable[[list[dict]], torch.optim.Optimizer],
    bn_weight_decay: float | None = None,
    prompt_lr_scale: float = 1.0,
    prompt_weight_decay: float | None = None,
) -> torch.optim.Optimizer:
    """``factory(groups)`` over the trainable parameters in groups ``backbone``, ``bn`` (BatchNorm weights and
    biases, only when ``bn_weight_decay`` is set) and ``prompt``, each only when it has any; then each group's
    own weight decay and lr scale over the optimizer's settings."""
    group_of = {id(p): "prompt" for p in model.prompts.parameters()}
    if bn_weight_decay is not None:
        for module in model.backbone.modules():
            if isinstance(module, NORMALIZATION_LAYERS):
                group_of.update({id(p): "bn" for p in module.parameters(recurse=False)})
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": params, "name": name}
        for name in ("backbone", "bn", "prompt")
        if (params := [p for p in trainable if group_of.get(id(p), "backbone") == name])
    ]
    optimizer = factory(groups)
    for group in optimizer.param_groups:
        if group["name"] == "bn":
            group["weight_decay"] = bn_weight_decay
        if group["name"] == "prompt":
            group["lr"] *= prompt_lr_scale
            if prompt_weight_decay is not None:
                group["weight_decay"] = prompt_weight_decay
    return optimizer


def run_epochs(max_epochs: int | None, max_steps: int | None) -> int | None:
    """The rule for the length a cosine schedule spans: the run's epochs, when its length is set in epochs (a run
    bounded by ``max_steps`` keeps the T_max it was given)."""
    return max_epochs if max_epochs and max_steps in (None, -1) else None


def follow_run_length(scheduler: object, max_epochs: int | None) -> None:
    """A cosine schedule spans the run's epochs: one setting, not two kept equal by hand (a sweep over epochs must
    not break the schedule). A run resumed with more (or fewer) epochs continues the cosine over its new length:
    the restored schedule's T_max and the learning rates it reached are rebuilt for the epoch it stands at
    (torch's cosine steps from the current rate, so a schedule that had reached 0 would stay there)."""
    if not (
        isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
        and max_epochs
        and scheduler.T_max != max_epochs
    ):
        return
    rank_zero_info(f"lr_scheduler.T_max {scheduler.T_max} -> {max_epochs}: the cosine follows trainer.max_epochs")
    state = {**scheduler.state_dict(), "T_max": max_epochs}
    if scheduler.last_epoch > 0:
        progress = math.cos(math.pi * min(scheduler.last_epoch, max_epochs) / max_epochs)
        rates = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + progress) / 2 for base in scheduler.base_lrs]
        for group, rate in zip(scheduler.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate  # torch's cosine steps from these
    scheduler.load_state_dict(state)


def accumulation(global_batch: int, trainer: L.Trainer, datamodule: L.LightningDataModule) -> int:
    """Batches accumulated per step so that processes x data batch x accumulation = ``global_batch``."""
    batch = getattr(datamodule, "batch_size", None)
    if not batch:
        raise ConfigError("global_batch_size needs a data module with a batch_size")
    per_step = trainer.world_size * batch
    if global_batch % per_step:
        raise ConfigError(
            f"global_batch_size {global_batch} is not a multiple of {trainer.num_nodes} node(s) x "
            f"{trainer.num_devices} device(s) x data batch_size {batch} = {per_step}"
        )
    configured = trainer.accumulate_grad_batches
    if configured not in (1, global_batch // per_step):
        raise ConfigError(
            f"trainer.accumulate_grad_batches {configured} and global_batch_size {global_batch} disagree: set one"
        )
    return global_batch // per_step
