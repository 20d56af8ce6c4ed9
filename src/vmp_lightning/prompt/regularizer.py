"""Temporal attention variation V: penalises attention maps that change abruptly from one step to the next."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

VReduction = Literal["mean", "per_pair", "sum"]


def temporal_variation(attention: Tensor, reduction: VReduction = "mean") -> Tensor:
    """``V`` of attention maps ``B x T x H x W`` (T >= 2), computed in float32 (or float64).

    How the sum is reduced (``reduction``), with ``S = sum_b sum_{t=1}^{T-1} ||A_{b,t+1} - A_{b,t}||_F^2``:

    - ``"mean"`` (default, as the reference code): ``S / (B * (T-1) * H * W)``, the mean over batch, consecutive
      pairs and pixels, so lambda does not depend on resolution or batch size;
    - ``"per_pair"`` (the paper's formula): ``S / (B * (T-1))``, the squared Frobenius norm averaged over pairs,
      then over the batch;
    - ``"sum"``: ``S``.
    """
    if attention.dim() != 4:
        raise ValueError(f"temporal_variation expects attention maps B x T x H x W, got shape {tuple(attention.shape)}")
    batch, steps, height, width = attention.shape
    if steps < 2:
        raise ValueError(
            f"temporal_variation needs at least 2 attention maps (3 input frames), got {steps}; "
            "sample more frames or set lambda_v to 0"
        )
    a = attention.to(torch.promote_types(attention.dtype, torch.float32))
    total = (a[:, 1:] - a[:, :-1]).square().sum()
    if reduction == "mean":
        return total / (batch * (steps - 1) * height * width)
    if reduction == "per_pair":
        return total / (batch * (steps - 1))
    if reduction == "sum":
        return total
    raise ValueError(f"V reduction must be 'mean', 'per_pair' or 'sum', got {reduction!r}")
