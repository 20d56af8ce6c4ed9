"""PySlowFast's checkpoint layouts (facebookresearch/SlowFast model zoo) mapped onto our pytorchvideo backbones.

Two layouts exist: the PyTorch one (``.pyth``: ``{"model_state": ...}`` with names such as
``s1.pathway0_stem.conv.weight``, ``s2.pathway1_res0.branch2.a_bn.running_mean``, ``s1_fuse.conv_f2s.weight``,
``head.projection.weight``) and the Caffe2 one (``.pkl``: ``{"blobs": {name: numpy array}}`` with names such as
``res2_0_branch2a_w``, ``t_res_conv1_bn_riv``, ``pred_w``). Caffe2 names are first turned into PySlowFast's PyTorch
names, following the rules of PySlowFast's ``c2_model_loading``; PySlowFast names then map onto pytorchvideo's by an
explicit table per architecture (never by position), so a name that has no counterpart stays as it is and the load
report lists it as unexpected.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from vmp_lightning.errors import UserError
from vmp_lightning.internals import numpy_multiarray

#: Parts of a PySlowFast residual block (``sK.pathwayP_resI.<part>``) -> pytorchvideo's ``ResBlock`` names.
BLOCK_PARTS = {
    "branch1": "branch1_conv",
    "branch1_bn": "branch1_norm",
    "branch2.a": "branch2.conv_a",
    "branch2.a_bn": "branch2.norm_a",
    "branch2.b": "branch2.conv_b",
    "branch2.b_bn": "branch2.norm_b",
    "branch2.se.fc1": "branch2.norm_b.1.block.0",
    "branch2.se.fc2": "branch2.norm_b.1.block.2",
    "branch2.c": "branch2.conv_c",
    "branch2.c_bn": "branch2.norm_c",
}

#: X3D's ``norm_b`` is a Sequential: (BatchNorm, squeeze-excitation or Identity).
X3D_BLOCK_PARTS = {**BLOCK_PARTS, "branch2.b_bn": "branch2.norm_b.0"}
SLOWFAST_HEAD = {"head.projection": "net.blocks.6.proj"}
X3D_STEM_AND_HEAD = {
    "s1.pathway0_stem.conv_xy": "net.blocks.0.conv.conv_t",  # pytorchvideo calls the 1x3x3 conv conv_t
    "s1.pathway0_stem.conv": "net.blocks.0.conv.conv_xy",  # and the depth-wise 5x1x1 one conv_xy
    "s1.pathway0_stem.bn": "net.blocks.0.norm",
    "head.conv_5": "net.blocks.5.pool.pre_conv",
    "head.conv_5_bn": "net.blocks.5.pool.pre_norm",
    "head.lin_5": "net.blocks.5.pool.post_conv",
    "head.lin_5_bn": "net.blocks.5.pool.post_norm",
    "head.projection": "net.blocks.5.proj",
}

_BLOCK = re.compile(r"^s(\d)\.pathway(\d)_res(\d+)\.(.+)$")
_STEM = re.compile(r"^s1\.pathway(\d)_stem\.(conv|bn)$")
_FUSE = re.compile(r"^s(\d)_fuse\.(conv_f2s|bn)$")


def is_pyslowfast_layout(state: dict[str, Tensor]) -> bool:
    return any(key.startswith("s1.pathway0_stem.") for key in state)


def _split(key: str) -> tuple[str, str]:
    module, _, leaf = key.rpartition(".")
    return module, leaf


def _block(module: str, parts: dict[str, str], stage_root: str) -> str | None:
    """``sK.pathwayP_resI.<part>`` -> ``<stage_root>.res_blocks.I.<our part>`` (stage K-1, pathway P)."""
    match = _BLOCK.match(module)
    if not match or match.group(4) not in parts:
        return None
    stage, pathway, index, part = match.groups()
    return stage_root.format(stage=int(stage) - 1, pathway=pathway) + f".res_blocks.{index}.{parts[part]}"


def slowfast_from_pyslowfast(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """PySlowFast SlowFast names -> `vmp_lightning.backbones.SlowFast` names (unknown names unchanged)."""
    out = {}
    for key, value in state.items():
        module, leaf = _split(key)
        target = SLOWFAST_HEAD.get(module) or _block(
            module, BLOCK_PARTS, "net.blocks.{stage}.multipathway_blocks.{pathway}"
        )
        if target is None and (match := _STEM.match(module)):
            target = f"net.blocks.0.multipathway_blocks.{match[1]}." + {"conv": "conv", "bn": "norm"}[match[2]]
        if target is None and (match := _FUSE.match(module)):
            part = {"conv_f2s": "conv_fast_to_slow", "bn": "norm"}[match[2]]
            target = f"net.blocks.{int(match[1]) - 1}.multipathway_fusion.{part}"
        out[f"{target}.{leaf}" if target else key] = value
    return out


def x3d_from_pyslowfast(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """PySlowFast X3D names -> `vmp_lightning.backbones.X3D` names (unknown names unchanged)."""
    out = {}
    for key, value in state.items():
        module, leaf = _split(key)
        target = X3D_STEM_AND_HEAD.get(module) or _block(module, X3D_BLOCK_PARTS, "net.blocks.{stage}")
        out[f"{target}.{leaf}" if target else key] = value
    return out


# --- Caffe2 ``.pkl`` files --------------------------------------------------------------------------------------

_C2_LEAVES = {"w": "weight", "b": "bias", "s": "weight", "rm": "running_mean", "riv": "running_var"}
_C2_BLOCK = re.compile(r"^(t_)?res(\d)_(\d+)_branch(1|2[abc])(_bn)?(?:_fc([12]))?$")
_C2_FUSE = re.compile(r"^t_(?:pool1|res(\d)_\d+_branch2c_bn)_subsample(_bn)?$")
_C2_FIXED = {
    "conv1": "s1.pathway0_stem.conv",
    "conv1_xy": "s1.pathway0_stem.conv_xy",
    "res_conv1_bn": "s1.pathway0_stem.bn",
    "t_conv1": "s1.pathway1_stem.conv",
    "t_res_conv1_bn": "s1.pathway1_stem.bn",
    "pred": "head.projection",
    "conv_5": "head.conv_5",
    "conv_5_bn": "head.conv_5_bn",
    "lin_5": "head.lin_5",
    "lin_5_bn": "head.lin_5_bn",
}


def pyslowfast_name_of_caffe2_blob(blob: str) -> str | None:
    """PySlowFast's PyTorch name of a Caffe2 blob (``res3_1_branch2b_bn_riv`` ->
    ``s3.pathway0_res1.branch2.b_bn.running_var``); None for blobs that are no weights (momentum, lr, ...)."""
    module, _, leaf = blob.rpartition("_")
    if leaf not in _C2_LEAVES:
        return None
    name = _C2_FIXED.get(module)
    if name is None and (match := _C2_FUSE.match(module)):
        name = f"s{match[1] or 1}_fuse." + ("bn" if match[2] else "conv_f2s")
    if name is None and (match := _C2_BLOCK.match(module)):
        fast, stage, index, branch, bn, fc = match.groups()
        name = f"s{stage}.pathway{1 if fast else 0}_res{index}."
        if fc:
            name += f"branch2.se.fc{fc}"
        else:
            name += ("branch1" if branch == "1" else f"branch2.{branch[1]}") + ("_bn" if bn else "")
    return f"{name}.{_C2_LEAVES[leaf]}" if name else None


class RefusedPickleError(UserError, ValueError):
    """A weights file whose pickle names code to run (a global outside the few that arrays need)."""


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else (no code runs)."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")
        if module == "numpy":
            return getattr(np, name)
        return getattr(numpy_multiarray(), name) if "multiarray" in module else super().find_class(module, name)


def read_caffe2_pickle(path: str | Path) -> dict[str, Tensor]:
    """The weights of a PySlowFast Caffe2 ``.pkl`` (``{"blobs": ...}``), under PySlowFast's PyTorch names.

    Raises ValueError when the file is a pickle of something else.
    """
    with open(path, "rb") as file:
        try:
            content = _ArraysOnly(file, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise RefusedPickleError(
                f"{path}: refused: {error} (it could run code on load; only arrays are read)"
            ) from None
        except Exception as error:
            raise ValueError(f"{path}: not a weights file this loader can read safely ({error})") from None
    blobs = content.get("blobs") if isinstance(content, dict) else None
    if not isinstance(blobs, dict):
        raise ValueError(f"{path}: a pickle, but not a PySlowFast Caffe2 checkpoint (no 'blobs' dict)")
    state = {}
    for blob, array in blobs.items():
        name = pyslowfast_name_of_caffe2_blob(blob)
        if name is not None and isinstance(array, np.ndarray) and array.dtype.kind == "f":
            state[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return state
