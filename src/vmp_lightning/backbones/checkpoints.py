"""Loading pretrained weights with a report: pytorchvideo / PySlowFast / TimeSformer ``.pyth`` files (state dict
under ``model_state``), PySlowFast's Caffe2 ``.pkl`` files, timm ViT weights, plain state dicts, and this project's
Lightning checkpoints. PySlowFast's own names are converted by the backbone that knows them
(``from_original_layout``, see `vmp_lightning.backbones.pyslowfast`).

Keys are matched after the one prefix change (``module.``, ``model.``, ``backbone.``, ``net.``) that matches
most; entries whose shape differs are left at their fresh initialisation (the classification head for a new number
of classes) unless the model resizes them (`adapt_state_dict`, e.g. TimeSformer's embeddings). A checkpoint that
fills less than ``min_match`` of the model's parameters is an error, not a warning: a silently skipped backbone is
the classic failure this prevents. Files are read with ``torch.load(weights_only=True)``, Caffe2 pickles by an
unpickler that admits numpy arrays only.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from vmp_lightning.backbones.pyslowfast import is_pyslowfast_layout, read_caffe2_pickle
from vmp_lightning.errors import UserError

PREFIXES = ("", "module.", "model.", "backbone.", "net.", "module.model.", "backbone.net.")


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint matches too little of the model; the message carries the load report."""


class CheckpointFileError(UserError, ValueError):
    """The file is no checkpoint (a text file, an error page, a truncated download); the message names it."""


def refuse_code(path: str | Path, error: BaseException) -> None:
    """`CheckpointFileError` naming the file and the global when ``torch.load(weights_only=True)`` refused a pickle
    that would run code (``__reduce__`` of ``os.system`` and the like); nothing for other errors."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error)) or re.search(r"Unsupported global: ([\w.]+)", str(error))
    if found and isinstance(error, pickle.UnpicklingError):
        name = found.group(1)
        raise CheckpointFileError(
            f"{path}: refused: loading it would call {name} (only tensors and plain values are read)"
        ) from None


def check_checkpoint_file(path: str | Path) -> None:
    """Fail early, naming the file, when ``path`` cannot be a PyTorch checkpoint (cheap: reads the header and,
    for zip checkpoints, the archive's directory at the end of the file, which a truncated download lacks)."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise CheckpointFileError(f"{path}: no such checkpoint file")
    with path.open("rb") as file:
        head = file.read(2)
    if head == b"PK":
        try:
            zipfile.ZipFile(path).close()
        except zipfile.BadZipFile:
            raise CheckpointFileError(
                f"{path}: a truncated or damaged checkpoint (its zip archive is incomplete)"
            ) from None
    elif head[:1] != b"\x80":
        raise CheckpointFileError(f"{path}: not a PyTorch checkpoint (a text file or a download's error page?)")


def check_num_classes(checkpoint: dict, num_classes: int) -> None:
    """A run's checkpoint for another number of classes is a clear error, before any weight is loaded."""
    trained_for = checkpoint.get("hyper_parameters", {}).get("num_classes")
    if trained_for is not None and trained_for != num_classes:
        raise CheckpointMismatchError(
            f"the checkpoint was trained for {trained_for} classes, the data has {num_classes}: wrong checkpoint or "
            "dataset? (to fine-tune it on this dataset, pass it as model.init_checkpoint, which re-initialises the "
            "head, instead of --ckpt_path)"
        )


@dataclass
class LoadReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fraction: float = 0.0

    def summary(self, limit: int = 8) -> str:
        def listing(names: list[str]) -> str:
            shown = ", ".join(names[:limit])
            return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")

        lines = [f"checkpoint {self.source}: {100 * self.fraction:.1f} % of the model's parameters loaded"]
        for name in ("loaded", "reshaped", "reinitialised", "missing", "unexpected"):
            keys = getattr(self, name)
            lines.append(f"  {name:<13} {len(keys):>5}" + (f"  {listing(keys)}" if keys and name != "loaded" else ""))
        return "\n".join(lines + [f"  note: {note}" for note in self.notes])

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
        content = read_checkpoint_file(source)
    for key in ("model_state", "state_dict", "model", "module"):
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
            break
    if not isinstance(content, dict):
        raise ValueError(f"{source}: expected a state dict, got {type(content).__name__}")
    return {k: v for k, v in content.items() if isinstance(v, Tensor)}


def read_checkpoint_file(path: str | Path) -> object:
    """What a checkpoint file holds (``torch.load(weights_only=True)``; a PySlowFast Caffe2 pickle as
    ``{"model_state": ...}``), or an error that names the file and what it seems to be."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch fails in many ways on a file that is not one of its checkpoints
        torch_error = str(error).strip().splitlines()[0]
        with open(path, "rb") as file:
            is_pickle = file.read(1) == b"\x80"
        if not is_pickle:  # a torch zip checkpoint whose pickle names code; a plain pickle: the Caffe2 reader's call
            refuse_code(path, error)
    if is_pickle:
        return {"model_state": read_caffe2_pickle(path)}
    raise CheckpointFileError(
        f"{path} is not a checkpoint: expected a PyTorch file (.pt, .pth, .pyth, .ckpt) or a PySlowFast Caffe2 "
        f".pkl (torch: {torch_error[:200]}); is it truncated, or a download error page?"
    )


def from_original_layouts(state: dict[str, Tensor], model: nn.Module, report: LoadReport) -> dict[str, Tensor]:
    """``state`` with PySlowFast's names replaced by those of the backbone in ``model`` that reads them."""
    if not is_pyslowfast_layout(state):
        return state
    for name, module in model.named_modules():
        convert = getattr(module, "from_original_layout", None)
        if convert is not None:
            prefix = f"{name}." if name else ""
            converted = convert(state)
            renamed = {(prefix + k if k not in state else k): v for k, v in converted.items()}
            report.notes.append(f"PySlowFast layout: {len(state)} keys converted to {type(module).__name__}'s names")
            return renamed
    report.notes.append("the checkpoint is in PySlowFast's layout, but this model has no backbone that reads it")
    return state


def fits_by_reshape(value: Tensor, shape: torch.Size) -> bool:
    """Caffe2 stores 1x1x1 convolutions as fully-connected weights: the same values without trailing unit dims."""
    return value.dim() < len(shape) and tuple(value.shape) + (1,) * (len(shape) - value.dim()) == tuple(shape)


def align_keys(state: dict[str, Tensor], model_keys: set[str]) -> dict[str, Tensor]:
    """``state`` with the prefix change (strip one, add one, of `PREFIXES`) that matches most model keys; keys
    without the stripped prefix keep their names (so the report counts them as unexpected, never drops them)."""
    best, best_hits = state, len(model_keys & set(state))
    for strip in PREFIXES:
        for add in PREFIXES:
            if strip == add:
                continue
            renamed = {(add + k[len(strip) :] if k.startswith(strip) else k): v for k, v in state.items()}
            hits = len(model_keys & set(renamed))
            if hits > best_hits:
                best, best_hits = renamed, hits
    return best


#: The prompt parameters of the authors' code (q1xiangchen/VMPs: ``vmps.m``, ``vmps.n``, shape ``[1]``).
AUTHORS_PROMPT = {"vmps.m": "m", "vmps.n": "n"}


def place_authors_prompt(state: dict[str, Tensor], model: nn.Module, report: LoadReport) -> dict[str, Tensor]:
    """Put the authors' ``vmps.m`` / ``vmps.n`` into this model's one learnable-sigmoid prompt layer (as scalars),
    and note when that layer's luma differs from the authors' (BT.601 weights applied as if RGB were BGR)."""
    if not AUTHORS_PROMPT.keys() & state.keys():
        return state
    from vmp_lightning.prompt import LearnableSigmoid, MotionPrompt

    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, MotionPrompt)]
    sigmoids = [(name, m) for name, m in layers if isinstance(m.pn, LearnableSigmoid)]
    if len(layers) != 1 or len(sigmoids) != 1:
        report.notes.append(
            f"the checkpoint holds the authors' prompt parameters {sorted(AUTHORS_PROMPT.keys() & state.keys())}, "
            f"but this model has {len(layers)} prompt layers (needs exactly one learnable sigmoid: vmp true)"
        )
        return state
    name, layer = sigmoids[0]
    state = dict(state)
    for key, parameter in AUTHORS_PROMPT.items():
        if key in state:
            state[f"{name}.pn.{parameter}"] = state.pop(key).reshape(())
    if layer.luma_order != "bgr":
        report.notes.append(
            "the authors' prompt was trained with the reference code's luma (BGR weights on RGB input); this model "
            "uses BT.601 in RGB order: set model.reference_luma true to compute what the authors' model computes"
        )
    return state


def load_weights(model: nn.Module, source: str | Path, min_match: float = 0.5) -> LoadReport:
    """Load what fits of ``source`` into ``model`` and report it; raise `CheckpointMismatchError` when less than
    ``min_match`` of the model's parameter elements come from the checkpoint."""
    own = model.state_dict()
    report = LoadReport(str(source))
    state = from_original_layouts(read_state_dict(source), model, report)
    state = place_authors_prompt(align_keys(state, set(own)), model, report)
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
        elif fits_by_reshape(value, own[key].shape):
            usable[key] = value.reshape(own[key].shape)
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
    stray_prompts = [k for k in report.unexpected if k.startswith(("prompts.", *AUTHORS_PROMPT))]
    if stray_prompts and not any(k.startswith("prompts.") for k in own):
        report.notes.append(f"prompt parameters in the checkpoint, but this model has no prompt layer: {stray_prompts}")
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
