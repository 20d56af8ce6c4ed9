"""`Normalization`: what the data pipeline did to the pixels. The data module owns it; the model is told it.

Plain torch (no Lightning), so `PromptedModel` can be built from it in a notebook or an export script.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vmp_lightning.prompt import ChannelOrder

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Pixel statistics: ``x = (u - mean) / std`` per channel for pixels ``u`` in [0, 1], channels in
    ``channel_order`` (every decoder of this project gives RGB)."""

    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    channel_order: ChannelOrder = "rgb"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @classmethod
    def of(cls, value: Normalization | dict | None) -> Normalization | None:
        """A `Normalization` from itself, its dict (as checkpoints and YAML store it) or None."""
        if value is None or isinstance(value, Normalization):
            return value
        return cls(**value)

    def as_dict(self) -> dict:
        """Plain lists and strings: what checkpoints and YAML files store."""
        return {"mean": list(self.mean), "std": list(self.std), "channel_order": self.channel_order}

    def apply(self, video: Tensor) -> Tensor:
        """uint8 clips ``... x C x T x H x W`` -> float32 ``(x / 255 - mean) / std`` per channel, on their device."""
        if video.dtype != torch.uint8:
            raise ValueError(f"Normalization.apply expects uint8 clips, got {video.dtype}")
        scale = torch.tensor([1 / (255 * s) for s in self.std], device=video.device).view(3, 1, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(self.mean, self.std, strict=True)], device=video.device)
        return video.to(torch.float32).mul_(scale).sub_(shift.view(3, 1, 1, 1))


# Models built in Python save it in their hyper-parameters: allow it under torch.load(weights_only=True), also
# under the module path of versions before 0.2.
torch.serialization.add_safe_globals([Normalization, (Normalization, "vmp_lightning.data.datamodule.Normalization")])
