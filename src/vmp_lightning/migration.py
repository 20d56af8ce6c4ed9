"""Checkpoints of earlier versions load into this one, with the same outputs: what moved or was renamed.

- 0.1 and 0.2: the class lived in ``vmp_lightning.module`` (still importable from there).
- 0.1: the backbone and the prompts at the top of the state dict (now under ``model.``); ``v_normalization`` (now
  ``v_reduction``).
- 0.1 and 0.2: T was the data module's ``num_frames`` (now the model's ``num_frames``); a backbone sized for T
  (TimeSformer) holds it in its ``init_args``, which is where it is read back from. The normalisation was linked from
  the data into the model's ``normalization``, where it stays.

Used by `VideoClassifier.load_from_checkpoint`, by ``--ckpt_path`` on the command line, and for the ``config.yaml``
a run saved (`migrate_config`), so ``vmp-lightning fit --config <run>/config.yaml --ckpt_path <run>/.../last.ckpt``
resumes a run of an earlier version.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import IO, Any

import torch


def migrate_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """The saved hyper-parameters as this version names them (a new dict; current ones come back equal)."""
    hparams = dict(hparams)
    if hparams.get("_class_path") == "vmp_lightning.module.VideoClassifier":
        hparams["_class_path"] = "vmp_lightning.classifier.VideoClassifier"
    if "v_normalization" in hparams:
        hparams.setdefault("v_reduction", hparams.pop("v_normalization"))
    backbone = hparams.get("backbone")
    frames = backbone.get("init_args", {}).get("num_frames") if isinstance(backbone, dict) else None
    if "num_frames" not in hparams and frames is not None:
        hparams["num_frames"] = frames
    return hparams


def checkpoint_model_config(ckpt_path: str | Path) -> dict | None:
    """The ``model`` section a checkpoint's saved hyper-parameters make (what ``--ckpt_path`` rebuilds the model
    from), brought up to date; None when it saved none."""
    from vmp_lightning.backbones.checkpoints import refuse_code

    try:
        saved = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True).get("hyper_parameters", {})
    except pickle.UnpicklingError as error:
        refuse_code(ckpt_path, error)
        raise
    hparams = migrate_hyperparameters({k: v for k, v in saved.items() if k != "_instantiator"})
    if not hparams:
        return None
    if "_class_path" in hparams:
        return {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
    return hparams


def migrate_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """0.1 held the backbone and the prompts at the top of the state dict; they live under ``model.`` now."""
    if any(key.startswith(("backbone.", "prompts.")) for key in state):
        return {f"model.{key}": value for key, value in state.items()}
    return state


def migrate_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """Bring a checkpoint dict up to date in place; True when anything changed."""
    hparams = checkpoint.get("hyper_parameters", {})
    state = checkpoint.get("state_dict", {})
    new_hparams, new_state = migrate_hyperparameters(hparams), migrate_state_dict(state)
    changed = new_hparams != hparams or new_state is not state
    checkpoint["hyper_parameters"], checkpoint["state_dict"] = new_hparams, new_state
    return changed


def up_to_date_source(path: str | Path | IO) -> str | Path | IO:
    """The checkpoint file itself when it is of this version; else an in-memory copy brought up to date (read
    memory-mapped first, so a current checkpoint costs no extra read of its tensors)."""
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return path
    checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if not migrate_checkpoint(checkpoint):
        return path
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return buffer


def migrate_config(config: dict[str, Any]) -> list[str]:
    """Bring a saved run config (``config.yaml``, one subcommand's) up to date in place; says what moved. Until
    0.2 the data module held T (``num_frames``), the prompt's ``extra_frames`` and the pixel ``mean`` / ``std``;
    the model owns them now (``model.num_frames``, ``model.normalization``), the data is told ``frames_per_clip``."""
    data = (config.get("data") or {}).get("init_args")
    if not isinstance(data, dict) or not {"num_frames", "extra_frames", "mean", "std"} & set(data):
        return []
    model = config.setdefault("model", {}).setdefault("init_args", {})
    moved = []
    if "num_frames" in data:
        model.setdefault("num_frames", data.pop("num_frames"))
        moved.append("data.num_frames -> model.num_frames")
    if "extra_frames" in data:
        data.pop("extra_frames")
        moved.append("data.extra_frames: dropped (model.vmp decides)")
    statistics = {key: data.pop(key) for key in ("mean", "std") if key in data}
    if statistics:
        model.setdefault("normalization", statistics)
        moved.append("data.mean / data.std -> model.normalization")
    return moved
