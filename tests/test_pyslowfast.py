"""PySlowFast model-zoo checkpoints (PyTorch ``.pyth`` and Caffe2 ``.pkl``) load into our SlowFast and X3D and give
the original's logits; files that are no checkpoint say what they are."""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest
import torch

import pyslowfast_reference as original
from vmp_lightning.backbones import X3D, SlowFast
from vmp_lightning.backbones.checkpoints import load_weights
from vmp_lightning.model import PromptedModel

PYTORCH_LEAVES = {"weight": "w", "bias": "b", "running_mean": "rm", "running_var": "riv"}


def caffe2_name(name: str, last_block: dict[int, int]) -> str | None:
    """The Caffe2 blob that PySlowFast's ``c2_model_loading`` turns into ``name`` (None: no Caffe2 blob)."""
    module, leaf = name.rsplit(".", 1)
    if leaf == "num_batches_tracked":
        return None
    c2_leaf = "s" if leaf == "weight" and module.endswith("bn") else PYTORCH_LEAVES[leaf]
    fast = "t_" if ".pathway1_" in module else ""
    if module.startswith("head."):
        c2 = {"head.projection": "pred"}.get(module, module[len("head.") :])  # conv_5, conv_5_bn, lin_5
    elif m := re.fullmatch(r"s1\.pathway\d_stem\.(conv|conv_xy|bn)", module):
        c2 = fast + {"conv": "conv1", "conv_xy": "conv1_xy", "bn": "res_conv1_bn"}[m[1]]
    elif m := re.fullmatch(r"s(\d)_fuse\.(conv_f2s|bn)", module):
        stage = int(m[1])
        c2 = "t_pool1_subsample" if stage == 1 else f"t_res{stage}_{last_block[stage]}_branch2c_bn_subsample"
        c2 += "_bn" if m[2] == "bn" else ""
    elif m := re.fullmatch(r"s(\d)\.pathway\d_res(\d+)\.branch2\.se\.fc([12])", module):
        c2 = f"res{m[1]}_{m[2]}_branch2b_bn_fc{m[3]}"
    elif m := re.fullmatch(r"s(\d)\.pathway\d_res(\d+)\.(branch1|branch1_bn|branch2\.([abc])(_bn)?)", module):
        c2 = f"{fast}res{m[1]}_{m[2]}_" + (m[3] if m[3].startswith("branch1") else f"branch2{m[4]}{m[5] or ''}")
    else:
        raise AssertionError(f"no Caffe2 name for {name}")
    return f"{c2}_{c2_leaf}"


def write_caffe2_pickle(state: dict[str, torch.Tensor], path, last_block: dict[int, int]) -> None:
    """A Caffe2 ``.pkl`` as PySlowFast's model zoo ships them: protocol 2, numpy arrays under ``numpy.core``, fully
    connected weights without the unit dims, momentum blobs and a learning-rate scalar beside the weights."""
    blobs = {"lr": np.array([0.1], dtype=np.float32), "model_iter": np.array([196000])}
    for name, value in state.items():
        blob = caffe2_name(name, last_block)
        if blob is not None:
            array = value.numpy()
            blobs[blob] = array.reshape(array.shape[:2]) if blob == "lin_5_w" else array
            blobs[blob + "_momentum"] = np.zeros_like(array)
    content = pickle.dumps({"blobs": blobs}, protocol=2)
    path.write_bytes(content.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def slowfast_pair(num_classes: int = 7):
    return original.randomise(original.SlowFast(num_classes, width=8)), PromptedModel(
        SlowFast(7, width=8), 7, num_frames=16
    )


def x3d_pair(num_classes: int = 7):
    return original.randomise(original.X3D(num_classes)), PromptedModel(X3D(7, size="s"), 7, num_frames=4)


def slowfast_inputs():
    fast = torch.randn(2, 3, 16, 32, 32, generator=torch.Generator().manual_seed(1))
    slow = fast[:, :, torch.linspace(0, 15, 4).long()]  # PySlowFast's pack_pathway_output
    return [slow, fast], fast


def x3d_inputs():
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    return clip, clip


CASES = {"slowfast": (slowfast_pair, slowfast_inputs), "x3d": (x3d_pair, x3d_inputs)}


@pytest.mark.parametrize("name", CASES)
def test_pyslowfast_pyth_gives_the_original_logits(name, tmp_path):
    make_pair, make_inputs = CASES[name]
    reference, ours = make_pair()
    torch.save({"model_state": reference.state_dict(), "epoch": 196, "optimizer_state": {}}, tmp_path / "zoo.pyth")
    report = ours.load_pretrained(tmp_path / "zoo.pyth")
    assert report.fraction == 1.0 and not report.missing and not report.unexpected and not report.reinitialised
    assert any("PySlowFast layout" in note for note in report.notes)
    original_input, our_input = make_inputs()
    with torch.no_grad():
        expected = reference(original_input)
        logits, _ = ours.eval()(our_input)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_pyslowfast_caffe2_pickle_gives_the_original_logits(name, tmp_path):
    make_pair, make_inputs = CASES[name]
    reference, ours = make_pair()
    last_block: dict[int, int] = {}
    for key in reference.state_dict():
        if m := re.match(r"s(\d)\.pathway\d_res(\d+)\.", key):
            last_block[int(m[1])] = max(last_block.get(int(m[1]), 0), int(m[2]))
    write_caffe2_pickle(reference.state_dict(), tmp_path / "zoo.pkl", last_block)
    report = ours.load_pretrained(tmp_path / "zoo.pkl")
    assert report.fraction == 1.0 and not report.unexpected and not report.reinitialised
    assert all(key.endswith("num_batches_tracked") for key in report.missing)  # Caffe2 has no such counter
    original_input, our_input = make_inputs()
    with torch.no_grad():
        expected = reference(original_input)
        logits, _ = ours.eval()(our_input)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("reference", "ours"),
    [
        (lambda: original.SlowFast(400), lambda: SlowFast(51)),  # SLOWFAST_8x8_R50
        (lambda: original.X3D(400), lambda: X3D(51, size="s")),  # X3D_S
        (lambda: original.X3D(400, depth_factor=5.0), lambda: X3D(51, size="l")),  # X3D_L
    ],
    ids=["SLOWFAST_8x8_R50", "X3D_S", "X3D_L"],
)
def test_model_zoo_sizes_load_everything_but_the_kinetics_head(reference, ours, tmp_path):
    torch.save({"model_state": reference().state_dict()}, tmp_path / "zoo.pyth")
    model = PromptedModel(ours(), 51, vmp=True, normalization={"mean": [0.45] * 3, "std": [0.225] * 3})
    report = load_weights(model, tmp_path / "zoo.pyth")
    head = model.head_name
    assert report.reinitialised == [f"backbone.{head}.bias", f"backbone.{head}.weight"]
    assert not report.unexpected
    assert all(key.startswith("prompts.") for key in report.missing)  # only the prompt layer is new
    assert report.fraction > 0.96  # the rest is the 400-class head (3.4 % of X3D-S, 0.35 % of SlowFast)


def test_x3d_builds_the_shortcut_norm_pytorchvideo_leaves_out():
    block = X3D(5, size="s").net.blocks[1].res_blocks[0]  # res2: 24 -> 24 channels, stride 2
    assert block.branch1_conv.in_channels == block.branch1_conv.out_channels
    assert isinstance(block.branch1_norm, torch.nn.BatchNorm3d)


def test_files_that_are_no_checkpoint_say_what_they_are(tmp_path):
    model = PromptedModel(X3D(5, size="s"), 5)
    (tmp_path / "page.pyth").write_text("<html>404 Not Found</html>")
    with pytest.raises(ValueError, match=r"page\.pyth is not a checkpoint.*truncated, or a download error page"):
        model.load_pretrained(tmp_path / "page.pyth")
    torch.save({"model_state": model.state_dict()}, tmp_path / "whole.pyth")
    (tmp_path / "cut.pyth").write_bytes((tmp_path / "whole.pyth").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cut\.pyth is not a checkpoint"):
        model.load_pretrained(tmp_path / "cut.pyth")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}, protocol=2))
    with pytest.raises(ValueError, match=r"other\.pkl: a pickle, but not a PySlowFast Caffe2 checkpoint"):
        model.load_pretrained(tmp_path / "other.pkl")
    (tmp_path / "code.pkl").write_bytes(pickle.dumps({"blobs": {"x": os.system}}, protocol=2))
    with pytest.raises(ValueError, match=r"code\.pkl: refused: posix\.system is not allowed in a weights file"):
        model.load_pretrained(tmp_path / "code.pkl")
