"""`Normalization`: how uint8 pixels become the model's input. `PromptedModel` owns one; the data pipeline delivers
uint8 clips and never normalises.

The bottom of the package (plain torch): the prompt layer, the model and the figures all take this one object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vmp_lightning.errors import ConfigError

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Pixel statistics: ``x = (u - mean) / std`` per channel for RGB pixels ``u`` in [0, 1] (every decoder of this
    project gives RGB; a model needing BGR input reorders its own first layer)."""

    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ConfigError(f"normalization {name} needs one value per colour channel (3), got {values}")
            object.__setattr__(self, name, values)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"normalization std must be positive, got {self.std}")

    @classmethod
    def of(cls, value: Normalization | dict | None) -> Normalization:
        """A `Normalization` from itself, its dict (as checkpoints and YAML store it), or the default for None."""
        if value is None:
            return cls()
        if isinstance(value, Normalization):
            return value
        value = dict(value)
        if value.pop("channel_order", "rgb") != "rgb":  # saved by 0.4 and earlier, where only "rgb" had a producer
            raise ConfigError("normalization channel_order: every decoder gives RGB frames; only 'rgb' is read")
        return cls(**value)

    def as_dict(self) -> dict:
        """Plain lists and strings: what checkpoints and YAML files store."""
        return {"mean": list(self.mean), "std": list(self.std)}

    def scale_and_shift(self) -> tuple[Tensor, Tensor]:
        """``x = u8 * scale - shift``: the two ``3 x 1 x 1 x 1`` float32 tensors `apply` uses (a model keeps them
        as buffers on its device)."""
        scale = torch.tensor([1 / (255 * s) for s in self.std]).view(3, 1, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(self.mean, self.std, strict=True)]).view(3, 1, 1, 1)
        return scale, shift

    def apply(self, video: Tensor, scale_and_shift: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """uint8 clips ``... x C x T x H x W`` -> float32 ``(x / 255 - mean) / std`` per channel, on their device
        (with ``scale_and_shift`` already there, nothing is built per call)."""
        if video.dtype != torch.uint8:
            raise ValueError(f"Normalization.apply expects uint8 clips, got {video.dtype}")
        scale, shift = scale_and_shift or (t.to(video.device) for t in self.scale_and_shift())
        return video.to(torch.float32).mul_(scale).sub_(shift)

    def invert(self, clip: Tensor) -> Tensor:
        """Normalised ``C x T x H x W`` -> pixels in [0, 1] (float32 on the CPU), for display."""
        mean = torch.tensor(self.mean).view(3, 1, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1, 1)
        return (clip.float().cpu() * std + mean).clamp(0, 1)


# Models built in Python save it in their hyper-parameters: allow it under torch.load(weights_only=True), also
# under the module path of versions before 0.2.
torch.serialization.add_safe_globals([Normalization, (Normalization, "vmp_lightning.data.datamodule.Normalization")])
