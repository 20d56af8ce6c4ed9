"""The optimizer of a `PromptedModel`: param groups ``backbone``, ``bn`` and ``prompt``, each with its own settings,
and a cosine schedule that follows the run's length."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from vmp_lightning.model import PromptedModel


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
            if isinstance(module, nn.modules.batchnorm._NormBase):
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
            group["lr"] = rate
        state["_last_lr"] = rates
    scheduler.load_state_dict(state)
