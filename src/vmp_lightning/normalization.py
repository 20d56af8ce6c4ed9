"""`Normalization`: how uint8 pixels become the model's input. `PromptedModel` owns one; the data pipeline delivers
uint8 clips and never normalises.

The bottom of the package (plain torch): the prompt layer, the model and the figures all take this one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vmp_lightning.errors import ConfigError

ChannelOrder = Literal["rgb", "bgr"]

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
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ConfigError(f"normalization {name} needs one value per colour channel (3), got {values}")
            object.__setattr__(self, name, values)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"normalization std must be positive, got {self.std}")
        if self.channel_order not in ("rgb", "bgr"):
            raise ConfigError(f"normalization channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")

    @classmethod
    def of(cls, value: Normalization | dict | None) -> Normalization:
        """A `Normalization` from itself, its dict (as checkpoints and YAML store it), or the default for None."""
        if value is None:
            return cls()
        return value if isinstance(value, Normalization) else cls(**value)

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

    def invert(self, clip: Tensor) -> Tensor:
        """Normalised ``C x T x H x W`` -> pixels in [0, 1] (float32 on the CPU), for display."""
        mean = torch.tensor(self.mean).view(3, 1, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1, 1)
        return (clip.float().cpu() * std + mean).clamp(0, 1)


# Models built in Python save it in their hyper-parameters: allow it under torch.load(weights_only=True), also
# under the module path of versions before 0.2.
torch.serialization.add_safe_globals([Normalization, (Normalization, "vmp_lightning.data.datamodule.Normalization")])
