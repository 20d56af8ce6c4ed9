"""`PromptedModel`: a backbone with motion prompt layers in front, in plain PyTorch (no Lightning).

It owns the clip contract, as MMAction2's data preprocessor does: how many frames a clip holds and how its uint8
pixels are normalised. Usable as it is in a notebook, an analysis script or an export; `VideoClassifier`
(classifier.py) trains one.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from vmp_lightning.backbones.checkpoints import LoadReport, load_weights
from vmp_lightning.backbones.short_clips import guard_short_clips
from vmp_lightning.errors import ConfigError
from vmp_lightning.internals import partial_class_and_keywords
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


def frames_per_clip(num_frames: int, vmp: bool) -> int:
    """Frames a clip holds: the backbone's T, plus the one the motion prompt consumes (T+1 frames -> T prompts)."""
    return num_frames + (MotionPrompt.extra_frames if vmp else 0)


def build_backbone(factory: Callable[..., nn.Module], num_classes: int, num_frames: int) -> nn.Module:
    """``factory(num_classes)``, and ``num_frames=`` the model's T when the factory takes it (TimeSformer's time
    embedding), so T has one owner. A different T set on the backbone itself is an error naming both."""
    target, keywords = partial_class_and_keywords(factory)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "num_frames" not in parameters and "num_frames" not in keywords:
        return factory(num_classes)
    given, default = keywords.get("num_frames"), getattr(parameters.get("num_frames"), "default", None)
    if given not in (None, default, num_frames):
        raise ConfigError(
            f"the backbone's num_frames ({given}) differs from model.num_frames ({num_frames}): T is the model's "
            "setting, remove num_frames from the backbone's init_args"
        )
    return factory(num_classes, num_frames=num_frames)


def find_head(backbone: nn.Module, num_classes: int) -> str:
    """Name of the classifier head: the last Linear / Conv layer whose output size is ``num_classes``."""
    found = ""
    for name, module in backbone.named_modules():
        out = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and out == num_classes:
            found = name
    if not found:
        raise ConfigError(
            f"cannot find the classifier head of {type(backbone).__name__}: no Linear/Conv layer has "
            f"{num_classes} outputs; set model.head to the head's module name"
        )
    return found


class PromptedModel(nn.Module):
    """``forward(clip) -> (logits, attention)``: attention maps ``B x T x H x W`` per prompted site (empty
    without VMPs).

    The clip is ``B x 3 x frames_per_clip x H x W``: T frames, T+1 with VMPs. uint8 clips (what every data module of
    this project delivers) are normalised here, on their device, with `normalization`; a floating-point clip is
    taken as normalised already (an export, a notebook holding normalised tensors).

    Args:
        backbone: maps ``B x 3 x T x H x W`` to ``num_classes`` logits; a `PromptSites` backbone places the
            prompts itself.
        num_classes: the backbone's number of outputs (to find its head).
        num_frames: T, the frames the backbone sees (a backbone with its own ``num_frames`` must agree).
        vmp: put motion prompt layers in front of the backbone.
        vmp_sites: where the prompts go on a `PromptSites` backbone (SlowFast: ``["slow"]``, ``["fast"]`` or
            ``["slow", "fast"]``, the three VMP rows of Table 2); None = all its sites (``["input"]`` otherwise).
        share_prompt: one set of PN parameters for all sites instead of one layer per site.
        pn: the PN function (default: the paper's learnable sigmoid); copied for each further site.
        normalization: mean / std / channel order of the pixels (a `Normalization` or its dict; default: the
            Kinetics statistics every original checkpoint was trained with); the prompt layer de-normalises with it.
        reference_luma: the reference code's luma (BT.601 weights applied as if RGB input were BGR).
        head: module name of the classifier head inside the backbone (found by `find_head` when None).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        num_frames: int = 8,
        vmp: bool = False,
        vmp_sites: list[str] | None = None,
        share_prompt: bool = False,
        pn: PowerNorm | None = None,
        normalization: Normalization | dict | None = None,
        reference_luma: bool = False,
        head: str | None = None,
    ) -> None:
        super().__init__()
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if getattr(backbone, "num_frames", num_frames) != num_frames:
            raise ConfigError(f"the backbone is built for {backbone.num_frames} frames, the model for {num_frames}")
        self.backbone, self.num_classes = guard_short_clips(backbone), num_classes
        self.num_frames, self.frames_per_clip = num_frames, frames_per_clip(num_frames, vmp)
        self.normalization = Normalization.of(normalization)
        scale, shift = self.normalization.scale_and_shift()  # on the model's device; not in the state dict
        self.register_buffer("pixel_scale", scale, persistent=False)
        self.register_buffer("pixel_shift", shift, persistent=False)
        self.head_name = head or find_head(backbone, num_classes)
        sites = backbone.prompt_sites if isinstance(backbone, PromptSites) else (INPUT_SITE,)
        chosen = list(sites if vmp_sites is None else vmp_sites)
        if not chosen or not set(chosen) <= set(sites):
            raise ConfigError(f"vmp_sites must be a non-empty subset of {list(sites)} for this backbone, got {chosen}")
        self.frozen_backbone = False
        self.prompts = nn.ModuleDict()  # the distinct prompt layers; site_prompts maps each site onto one of them
        self.site_prompts: dict[str, MotionPrompt] = {}
        if vmp:
            names = ["shared"] if share_prompt and len(chosen) > 1 else chosen
            for index, name in enumerate(names):  # a given PN module is copied, so each layer owns its parameters
                layer_pn = copy.deepcopy(pn) if pn is not None and index > 0 else pn
                self.prompts[name] = MotionPrompt(self.normalization, layer_pn, reference_luma)
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

    def set_trainable(self, backbone: bool = True, head: bool = True, prompt: bool = True) -> None:
        """What is trained. A frozen backbone stays in eval mode (BatchNorm statistics and dropout fixed) except for
        its head and the head's dropout, which regularises the head being trained as it does in a full fine-tune."""
        self.requires_grad_(backbone)
        self.head.requires_grad_(head)
        self.prompts.requires_grad_(prompt)
        self.frozen_backbone = not backbone
        self.train(self.training)

    def train(self, mode: bool = True) -> PromptedModel:
        super().train(mode)
        if mode and self.frozen_backbone:
            self.backbone.eval()
            self.head.train()
            for dropout in self.head_dropout():
                dropout.train()
        return self

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

    def prepare(self, clip: Tensor) -> Tensor:
        """The clip as the layers take it: a uint8 clip normalised on its device, checked against the contract."""
        if clip.dim() != 5 or clip.shape[2] != self.frames_per_clip:
            prompt = f" (T={self.num_frames} + 1 for the motion prompt)" if self.prompts else ""
            raise ValueError(
                f"expected clips B x 3 x {self.frames_per_clip} x H x W{prompt}, got {tuple(clip.shape)}: "
                "sample data.frames_per_clip = model.frames_per_clip (the CLI links them)"
            )
        if clip.dtype != torch.uint8:
            return clip
        return self.normalization.apply(clip, (self.pixel_scale, self.pixel_shift))

    def forward(self, clip: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        clip = self.prepare(clip)
        if isinstance(self.backbone, PromptSites):
            return self.backbone.prompted_forward(clip, self.site_prompts)
        if not self.site_prompts:
            return self.backbone(clip), {}
        prompts, attention = self.site_prompts[INPUT_SITE](clip)
        return self.backbone(prompts), {INPUT_SITE: attention}

    def load_pretrained(self, source: str | Path, min_match: float = 0.5) -> LoadReport:
        """Load what fits of a checkpoint (see `load_weights`: original layouts, timm, this project's runs)."""
        return load_weights(self, source, min_match)
