"""The motion prompt layer: T+1 normalised frames -> T motion prompts and T attention maps."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vmp_lightning.normalization import ChannelOrder, Normalization
from vmp_lightning.prompt.pn import LearnableSigmoid, PowerNorm

#: ITU-R BT.601 luma weights in RGB order.
BT601_RGB = (0.299, 0.587, 0.114)


def luma_weights(channel_order: ChannelOrder) -> tuple[float, float, float]:
    """BT.601 weights in the order of the channels of the clip."""
    if channel_order == "rgb":
        return BT601_RGB
    if channel_order == "bgr":
        return BT601_RGB[::-1]
    raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")


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
        self.luma_order: ChannelOrder = "bgr" if reference_luma else normalization.channel_order
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
            w = self._luma_of_normalised.to(xf.dtype)
            luma = w[0] * xf[:, 0] + w[1] * xf[:, 1] + w[2] * xf[:, 2]  # B x (T+1) x H x W
            return luma[:, 1:] - luma[:, :-1]

    def attention(self, x: Tensor) -> Tensor:
        """Attention maps ``B x T x H x W`` (float32, or float64 for a float64 clip) of a normalised clip
        ``B x 3 x (T+1) x H x W``."""
        differences = self.differences(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.pn(differences)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
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
        return f"mean={n.mean}, std={n.std}, channel_order={n.channel_order!r}, luma_order={self.luma_order!r}"


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
