"""A guard against a PyTorch bf16 CPU convolution fault that any 3D backbone meets on short clips.

PyTorch's oneDNN bf16 convolution on the CPU can give garbage weight gradients (inf, NaN, 1e35 where float32 gives
~0.05) when the input holds fewer frames than the temporal kernel, depending on the machine's instruction set and
on memory contents: seen with torch 2.14 on SlowFast's slow pathway (2 frames, kernel 3) and on r3d_18's third
stage (2 frames, kernel 3) with ``ONEDNN_MAX_CPU_ISA=AVX512_CORE``, never with float32. `guard_short_clips` makes
exactly those convolutions run in float32 under CPU autocast, through hooks, so parameter names, classes and
pickling stay as they were and any ``nn.Conv3d`` subclass (torchvision's ``Conv3DSimple``) is covered.
"""

from __future__ import annotations

import torch
from torch import nn

_CONTEXT = "_short_clip_autocast"
_GUARDED = "_short_clip_guarded"  # set on each guarded conv (its hooks are registered once)


def _float32_when_short(conv: nn.Conv3d, args: tuple) -> tuple | None:
    x = args[0]
    if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu") or x.shape[2] >= conv.kernel_size[0]:
        return None
    context = torch.autocast("cpu", enabled=False)
    context.__enter__()
    conv.__dict__[_CONTEXT] = context
    return (x.float(), *args[1:])


def _restore_autocast(conv: nn.Conv3d, args: tuple, output: object) -> None:
    context = conv.__dict__.pop(_CONTEXT, None)
    if context is not None:
        context.__exit__(None, None, None)


def is_guarded(conv: nn.Module) -> bool:
    return bool(conv.__dict__.get(_GUARDED))


def guard_short_clips(module: nn.Module) -> nn.Module:
    """Make every temporal Conv3d of ``module`` run in float32 under CPU autocast when its input holds fewer
    frames than its temporal kernel (in place; idempotent; the state dict is unchanged)."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv3d) and conv.kernel_size[0] > 1 and not is_guarded(conv):
            conv.register_forward_pre_hook(_float32_when_short)
            conv.register_forward_hook(_restore_autocast, always_call=True)
            conv.__dict__[_GUARDED] = True
    return module
