"""The motion prompt layer: T+1 normalised frames -> T motion prompts and T attention maps."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt.pn import LearnableSigmoid, PowerNorm

#: ITU-R BT.601 luma weights in RGB order.
BT601_RGB = (0.299, 0.587, 0.114)


#: The order the luma weights are applied in to the RGB channels: ``rgb`` as the paper writes BT.601, ``bgr`` as
#: the authors' code did (``reference_luma``).
LumaOrder = Literal["rgb", "bgr"]


def luma_weights(order: LumaOrder) -> tuple[float, float, float]:
    """BT.601 weights, in RGB order or reversed."""
    if order == "rgb":
        return BT601_RGB
    if order == "bgr":
        return BT601_RGB[::-1]
    raise ValueError(f"luma order must be 'rgb' or 'bgr', got {order!r}")


class MotionPrompt(nn.Module):
    """Video motion prompt layer (Chen et al., ACML 2024).

    ``forward(x)`` takes a normalised clip ``B x 3 x (T+1) x H x W`` and returns ``(prompts, attention)``:
    prompts ``B x 3 x T x H x W`` in the input dtype, and attention maps ``B x T x H x W`` in float32
    (float64 for a float64 clip).

    The clip is de-normalised with the model's `Normalization`, reduced to BT.601 luma in its channel order,
    differenced between consecutive frames (signed), passed through the PN function ``pn`` (the learnable sigmoid by
    default), and each map multiplies the *later* frame of its pair in normalised space. The mean cancels in a frame
    difference, so only ``std`` enters the arithmetic. Everything up to the attention maps runs in float32 whatever
    autocast says.

    ``reference_luma``: the authors' code took luma with the BGR weights on RGB frames (so their numbers and
    checkpoints); True reproduces that, False (default) is BT.601 as the paper writes it.
    """

    def __init__(
        self, normalization: Normalization | None = None, pn: PowerNorm | None = None, reference_luma: bool = False
    ) -> None:
        super().__init__()
        self.normalization = normalization = normalization or Normalization()
        self.reference_luma = reference_luma
        self.luma_order: LumaOrder = "bgr" if reference_luma else "rgb"
        # Luma of de-normalised pixels, up to a constant that the difference removes: sum_c w_c * std_c * x_c.
        weights = [w * s for w, s in zip(luma_weights(self.luma_order), normalization.std, strict=True)]
        self.register_buffer("_luma_of_normalised", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.pn = pn if pn is not None else LearnableSigmoid()

    extra_frames = 1
    """Frames the layer consumes: a clip of T+1 frames becomes T prompts."""

    def differences(self, x: Tensor) -> Tensor:
        """The signed luma differences ``D`` ``B x T x H x W`` in [-1, 1] of a normalised clip
        ``B x 3 x (T+1) x H x W`` (float32, or float64 for a float64 clip): what the PN function sees."""
        check_clip(x, min_frames=2)
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.to(torch.promote_types(x.dtype, torch.float32))
            luma = _luma(xf, self._luma_of_normalised.to(xf.dtype))  # B x (T+1) x H x W
            return luma[:, 1:] - luma[:, :-1]

    def attention(self, x: Tensor) -> Tensor:
        """Attention maps ``B x T x H x W`` (float32, or float64 for a float64 clip) of a normalised clip
        ``B x 3 x (T+1) x H x W``."""
        differences = self.differences(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.pn(differences)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(self.pn, LearnableSigmoid):  # the default: one fused pass each way (SigmoidPrompt)
            check_clip(x, min_frames=2)
            return SigmoidPrompt.apply(x, self._luma_of_normalised, self.pn.a, self.pn.b)
        attention = self.attention(x)
        prompts = attention.unsqueeze(1).to(x.dtype) * x[:, :, 1:]
        return prompts, attention

    def log_values(self) -> dict[str, float]:
        """Current values of the PN parameters (``a``, ``b``, ``m``, ``n`` for the learnable sigmoid)."""
        return self.pn.log_values()

    def _pn_value(self, name: str) -> Tensor:
        if not isinstance(self.pn, LearnableSigmoid):
            raise TypeError(f"PN function {type(self.pn).__name__} has no {name!r} (use log_values())")
        return getattr(self.pn, name)

    a = property(lambda self: self._pn_value("a"), doc="Sigmoid slope (learnable sigmoid only).")
    b = property(lambda self: self._pn_value("b"), doc="Sigmoid shift (learnable sigmoid only).")
    m = property(lambda self: self._pn_value("m"), doc="Raw slope parameter (learnable sigmoid only).")
    n = property(lambda self: self._pn_value("n"), doc="Raw shift parameter (learnable sigmoid only).")

    def extra_repr(self) -> str:
        n = self.normalization
        return f"mean={n.mean}, std={n.std}, luma_order={self.luma_order!r}"


def _luma(x: Tensor, weights: Tensor) -> Tensor:
    """``sum_c w_c x_c`` ``B x (T+1) x H x W``, rounded as `MotionPrompt.differences` rounds it."""
    luma = x[:, 0] * weights[0]
    luma += x[:, 1] * weights[1]
    luma += x[:, 2] * weights[2]
    return luma


class SigmoidPrompt(torch.autograd.Function):
    """The layer with the learnable sigmoid, ``(x, luma weights, a, b) -> (prompts, attention)``, as one autograd
    node: the same arithmetic as the generic path, but only the attention maps are kept for backward (the
    differences are recomputed from the clip) and the backward pass is written out, a few elementwise passes instead
    of autograd's chain of small ones."""

    @staticmethod
    def forward(ctx, x: Tensor, weights: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.to(torch.promote_types(x.dtype, torch.float32))
            weights = weights.to(xf.dtype)
            luma = _luma(xf, weights)
            attention = torch.sub(luma[:, 1:], luma[:, :-1]).sub_(b).mul_(a).sigmoid_()
            prompts = attention.unsqueeze(1).to(x.dtype) * x[:, :, 1:]
        ctx.save_for_backward(x, attention, weights, a, b)
        return prompts, attention

    @staticmethod
    def backward(ctx, grad_prompts: Tensor | None, grad_attention: Tensor | None) -> tuple:
        x, attention, weights, a, b = ctx.saved_tensors
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.to(attention.dtype)
            # d loss / d attention, then through the sigmoid: d loss / d z, z = a (D - b)
            # (a new tensor: the incoming gradients are not ours to change in place)
            if grad_prompts is None:
                total = grad_attention.to(attention.dtype, copy=True)
            else:
                gp = grad_prompts.to(attention.dtype)
                total = gp[:, 0] * xf[:, 0, 1:]
                if grad_attention is not None:
                    total += grad_attention
                total.addcmul_(gp[:, 1], xf[:, 1, 1:]).addcmul_(gp[:, 2], xf[:, 2, 1:])
            g = total.mul_(attention).mul_(1 - attention)
            grad_x = grad_a = grad_b = None
            if ctx.needs_input_grad[2]:
                luma = _luma(xf, weights)
                grad_a = torch.sub(luma[:, 1:], luma[:, :-1]).sub_(b).mul_(g).sum()
            if ctx.needs_input_grad[3]:
                grad_b = -(a * g.sum())
            if ctx.needs_input_grad[0]:  # through the prompts (the later frame) and through D (both frames)
                through_d = weights.view(1, 3, 1, 1, 1) * g.mul_(a).unsqueeze(1)
                grad_x = torch.empty_like(xf)
                if grad_prompts is not None:
                    torch.addcmul(through_d, gp, attention.unsqueeze(1), out=grad_x[:, :, 1:])
                else:
                    grad_x[:, :, 1:] = through_d
                grad_x[:, :, 0].zero_()
                grad_x[:, :, :-1].sub_(through_d)
                grad_x = grad_x.to(x.dtype)
        return grad_x, None, grad_a, grad_b


def check_clip(x: Tensor, min_frames: int) -> None:
    """Raise a `ValueError` that names what was expected when ``x`` is not a ``B x 3 x T x H x W`` clip."""
    if x.dim() != 5:
        raise ValueError(f"expected a clip of shape B x C x T x H x W (5 dims), got {x.dim()} dims {tuple(x.shape)}")
    if x.shape[1] != 3:
        raise ValueError(f"expected 3 colour channels in dim 1 (B x C x T x H x W), got {x.shape[1]}: {tuple(x.shape)}")
    if x.shape[2] < min_frames:
        raise ValueError(
            f"the motion prompt needs at least {min_frames} frames (T+1 frames give T prompts), "
            f"got {x.shape[2]}: {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"expected a normalised floating-point clip, got dtype {x.dtype}")
