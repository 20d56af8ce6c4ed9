"""Loading pretrained weights with a report: pytorchvideo / PySlowFast / TimeSformer ``.pyth`` files (state dict
under ``model_state``), timm ViT weights, plain state dicts, and this project's Lightning checkpoints.

Keys are matched after the one prefix change (``module.``, ``model.``, ``backbone.``, ``net.``) that matches
most; entries whose shape differs are left at their fresh initialisation (the classification head for a new number
of classes) unless the model resizes them (`adapt_state_dict`, e.g. TimeSformer's embeddings). A checkpoint that
fills less than ``min_match`` of the model's parameters is an error, not a warning: a silently skipped backbone is
the classic failure this prevents. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

PREFIXES = ("", "module.", "model.", "backbone.", "net.", "module.model.", "backbone.net.")


class CheckpointMismatchError(ValueError):
    """The checkpoint matches too little of the model; the message carries the load report."""


@dataclass
class LoadReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    fraction: float = 0.0

    def summary(self, limit: int = 8) -> str:
        def listing(names: list[str]) -> str:
            shown = ", ".join(names[:limit])
            return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")

        lines = [f"checkpoint {self.source}: {100 * self.fraction:.1f} % of the model's parameters loaded"]
        for name in ("loaded", "reshaped", "reinitialised", "missing", "unexpected"):
            keys = getattr(self, name)
            lines.append(f"  {name:<13} {len(keys):>5}" + (f"  {listing(keys)}" if keys and name != "loaded" else ""))
        return "\n".join(lines)

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name)) for name in ("loaded", "reshaped", "reinitialised", "missing", "unexpected")
        }


def read_state_dict(source: str | Path, cache_dir: str | None = None) -> dict[str, Tensor]:
    """The tensors of a checkpoint file, a URL (downloaded once into ``cache_dir`` / torch hub's cache), or
    ``timm:<model name>`` (timm's pretrained weights, when online)."""
    source = str(source)
    if source.startswith("timm:"):
        import timm

        try:
            return timm.create_model(source[len("timm:") :], pretrained=True).state_dict()
        except Exception as error:  # offline, unknown tag: say which and why
            raise FileNotFoundError(f"cannot get timm's pretrained weights {source!r}: {error}") from error
    if source.startswith(("http://", "https://", "file://")):
        content = torch.hub.load_state_dict_from_url(source, model_dir=cache_dir, map_location="cpu", weights_only=True)
    else:
        if not Path(source).is_file():
            raise FileNotFoundError(f"checkpoint not found: {source}")
        content = torch.load(source, map_location="cpu", weights_only=True)
    for key in ("model_state", "state_dict", "model", "module"):
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
            break
    if not isinstance(content, dict):
        raise ValueError(f"{source}: expected a state dict, got {type(content).__name__}")
    return {k: v for k, v in content.items() if isinstance(v, Tensor)}


def align_keys(state: dict[str, Tensor], model_keys: set[str]) -> dict[str, Tensor]:
    """``state`` with the prefix change (strip one, add one, of `PREFIXES`) that matches most model keys."""
    best, best_hits = state, len(model_keys & set(state))
    for strip in PREFIXES:
        for add in PREFIXES:
            if strip == add:
                continue
            renamed = {add + k[len(strip) :]: v for k, v in state.items() if k.startswith(strip)}
            hits = len(model_keys & set(renamed))
            if hits > best_hits:
                best, best_hits = renamed, hits
    return best


def load_weights(model: nn.Module, source: str | Path, min_match: float = 0.5) -> LoadReport:
    """Load what fits of ``source`` into ``model`` and report it; raise `CheckpointMismatchError` when less than
    ``min_match`` of the model's parameter elements come from the checkpoint."""
    own = model.state_dict()
    state = align_keys(read_state_dict(source), set(own))
    report = LoadReport(str(source))
    for name, module in model.named_modules():  # modules that resize entries (embeddings) to their own size
        if hasattr(module, "adapt_state_dict"):
            prefix = f"{name}." if name else ""
            part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            part, reshaped = module.adapt_state_dict(part)
            state = {
                **{k: v for k, v in state.items() if not k.startswith(prefix)},
                **{prefix + k: v for k, v in part.items()},
            }
            report.reshaped += [prefix + k for k in reshaped]
    usable = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.reinitialised.append(key)
        else:
            usable[key] = value
    report.loaded, report.reinitialised, report.unexpected = (
        sorted(usable),
        sorted(report.reinitialised),
        sorted(report.unexpected),
    )
    report.missing = sorted(k for k in own if k not in usable and k not in report.reinitialised)
    parameter_keys = {name for name, _ in model.named_parameters()}
    total = sum(own[k].numel() for k in parameter_keys) or 1
    report.fraction = sum(usable[k].numel() for k in usable if k in parameter_keys) / total
    if report.fraction < min_match:
        raise CheckpointMismatchError(
            f"{report.summary()}\nless than {100 * min_match:.0f} % of the model matches this checkpoint: wrong file, "
            "wrong architecture or size? (lower min_match to accept a partial load on purpose)"
        )
    model.load_state_dict(usable, strict=False)
    return report
