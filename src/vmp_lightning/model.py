"""`PromptedModel`: a backbone with motion prompt layers in front, in plain PyTorch (no Lightning).

Usable as it is in a notebook, an analysis script or an export; `VideoClassifier` (module.py) trains one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from vmp_lightning.backbones.checkpoints import LoadReport, load_weights
from vmp_lightning.backbones.short_clips import guard_short_clips
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import MotionPrompt, PowerNorm

INPUT_SITE = "input"
"""The one prompt site of a single-input backbone: the prompts replace its input clip."""


@runtime_checkable
class PromptSites(Protocol):
    """A backbone with several inputs (SlowFast's pathways) that places the prompts itself.

    ``prompt_sites`` names the places a prompt can go; ``prompted_forward(clip, prompts)`` takes the clip and the
    layers of the chosen sites (an empty mapping: no prompts) and returns ``(logits, {site: attention})``.
    """

    prompt_sites: tuple[str, ...]

    def prompted_forward(
        self, clip: Tensor, prompts: Mapping[str, MotionPrompt]
    ) -> tuple[Tensor, dict[str, Tensor]]: ...


def find_head(backbone: nn.Module, num_classes: int) -> str:
    """Name of the classifier head: the last Linear / Conv layer whose output size is ``num_classes``."""
    found = ""
    for name, module in backbone.named_modules():
        out = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and out == num_classes:
            found = name
    if not found:
        raise ValueError(
            f"cannot find the classifier head of {type(backbone).__name__}: no Linear/Conv layer has "
            f"{num_classes} outputs; set model.head to the head's module name"
        )
    return found


class PromptedModel(nn.Module):
    """``forward(clip) -> (logits, attention)``: attention maps ``B x T x H x W`` per prompted site (empty
    without VMPs). With VMPs the clip holds T+1 frames (`MotionPrompt.extra_frames` more than the backbone's T).

    Args:
        backbone: maps ``B x 3 x T x H x W`` to ``num_classes`` logits; a `PromptSites` backbone places the
            prompts itself.
        num_classes: the backbone's number of outputs (to find its head).
        vmp: put motion prompt layers in front of the backbone.
        vmp_sites: where the prompts go on a `PromptSites` backbone (SlowFast: ``["slow"]``, ``["fast"]`` or
            ``["slow", "fast"]``, the three VMP rows of Table 2); None = all its sites (``["input"]`` otherwise).
        share_prompt: one set of PN parameters for all sites instead of one layer per site.
        pn: the PN function (default: the paper's learnable sigmoid); copied for each further site.
        normalization: the data's mean / std / channel order (a `Normalization` or its dict); required with VMPs,
            the layer de-normalises with it.
        reference_luma: the reference code's luma (BT.601 weights applied as if RGB input were BGR).
        head: module name of the classifier head inside the backbone (found by `find_head` when None).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        vmp: bool = False,
        vmp_sites: list[str] | None = None,
        share_prompt: bool = False,
        pn: PowerNorm | None = None,
        normalization: Normalization | dict | None = None,
        reference_luma: bool = False,
        head: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.num_classes = guard_short_clips(backbone), num_classes
        self.head_name = head or find_head(backbone, num_classes)
        sites = backbone.prompt_sites if isinstance(backbone, PromptSites) else (INPUT_SITE,)
        chosen = list(sites if vmp_sites is None else vmp_sites)
        if not chosen or not set(chosen) <= set(sites):
            raise ValueError(f"vmp_sites must be a non-empty subset of {list(sites)} for this backbone, got {chosen}")
        self.prompts = nn.ModuleDict()  # the distinct prompt layers; site_prompts maps each site onto one of them
        self.site_prompts: dict[str, MotionPrompt] = {}
        if vmp:
            normalization = Normalization.of(normalization)
            if normalization is None:
                raise ValueError(
                    "vmp=True needs the data's normalization (mean, std, channel order) to de-normalise frames; "
                    "the CLI links it from the data module, in Python pass normalization=datamodule.normalization"
                )
            order = "bgr" if reference_luma else normalization.channel_order
            names = ["shared"] if share_prompt and len(chosen) > 1 else chosen
            for index, name in enumerate(names):  # a given PN module is copied, so each layer owns its parameters
                layer_pn = copy.deepcopy(pn) if pn is not None and index > 0 else pn
                self.prompts[name] = MotionPrompt(normalization.mean, normalization.std, order, layer_pn)
            self.site_prompts = {site: self.prompts[site if site in self.prompts else "shared"] for site in chosen}

    @property
    def head(self) -> nn.Module:
        return self.backbone.get_submodule(self.head_name)

    def head_dropout(self) -> list[nn.Dropout]:
        """Dropout layers beside the head inside its own block (pytorchvideo's head, torchvision's ``head``
        Sequential): the head's regulariser. A head at the top of the backbone has none (the backbone's
        other dropout layers act on its input)."""
        parent, _, _ = self.head_name.rpartition(".")
        if not parent:
            return []
        return [m for m in self.backbone.get_submodule(parent).children() if isinstance(m, nn.Dropout)]

    @property
    def prompt(self) -> MotionPrompt | None:
        """The prompt layer when there is exactly one (None without VMPs)."""
        layers = list(self.prompts.values())
        if len(layers) > 1:
            raise RuntimeError("this model has one prompt per site: use model.prompts[site]")
        return layers[0] if layers else None

    def prompt_values(self) -> dict[str, float]:
        """Current PN parameters (``a``, ``b``, ``m``, ``n`` for the learnable sigmoid); ``<site>/<name>`` when
        there are several prompt layers."""
        several = len(self.prompts) > 1
        return {
            f"{site}/{name}" if several else name: value
            for site, layer in self.prompts.items()
            for name, value in layer.log_values().items()
        }

    @property
    def extra_frames(self) -> int:
        """Frames the clip holds beyond the backbone's T."""
        return MotionPrompt.extra_frames if self.prompts else 0

    def forward(self, clip: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if isinstance(self.backbone, PromptSites):
            return self.backbone.prompted_forward(clip, self.site_prompts)
        if not self.site_prompts:
            return self.backbone(clip), {}
        prompts, attention = self.site_prompts[INPUT_SITE](clip)
        return self.backbone(prompts), {INPUT_SITE: attention}

    def load_pretrained(self, source: str | Path, min_match: float = 0.5) -> LoadReport:
        """Load what fits of a checkpoint (see `load_weights`: original layouts, timm, this project's runs)."""
        return load_weights(self, source, min_match)
