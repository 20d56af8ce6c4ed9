"""PromptedModel (model.py): plain PyTorch, the clip contract it owns (frames, normalisation), the (logits,
attention) contract, prompt sites, head finding."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from vmp_lightning.backbones import X3D, SlowFast, TimeSformer, TinyVideoCNN
from vmp_lightning.model import PromptedModel, PromptSites, build_backbone, find_head, frames_per_clip
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import LearnableSigmoid, MotionPrompt

NORM = Normalization((0.45,) * 3, (0.225,) * 3)


def test_importing_the_model_does_not_import_lightning():
    code = (
        "import sys\n"
        "from vmp_lightning.model import PromptedModel\n"
        "heavy = {'lightning', 'pytorch_lightning', 'torchmetrics'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_vmp_model_returns_logits_and_the_input_attention():
    torch.manual_seed(0)
    model = PromptedModel(TinyVideoCNN(5, width=4), 5, vmp=True, normalization=NORM)
    clip = torch.randn(2, 3, 9, 16, 16)  # T + 1 = 9 frames
    logits, attention = model(clip)
    assert logits.shape == (2, 5) and set(attention) == {"input"}
    assert attention["input"].shape == (2, 8, 16, 16)
    expected_prompts, expected_maps = model.prompt(clip)  # the backbone sees exactly the layer's prompts
    torch.testing.assert_close(attention["input"], expected_maps)
    torch.testing.assert_close(logits, model.backbone(expected_prompts))
    assert model.frames_per_clip == 9 and set(model.prompt_values()) == {"a", "b", "m", "n"}


def test_baseline_model_returns_empty_attention():
    backbone = TinyVideoCNN(5, width=4)
    model = PromptedModel(backbone, 5)
    clip = torch.randn(2, 3, 8, 16, 16)
    logits, attention = model(clip)
    assert attention == {} and model.prompt is None and model.frames_per_clip == 8
    torch.testing.assert_close(logits, backbone(clip))


@pytest.mark.parametrize(("sites", "frames"), [(["slow"], {"slow": 2}), (["fast"], {"fast": 8}), (None, None)])
def test_slowfast_declares_its_sites(sites, frames):
    torch.manual_seed(0)
    backbone = SlowFast(5, width=8, dropout=0.0)
    assert isinstance(backbone, PromptSites) and not isinstance(TinyVideoCNN(5), PromptSites)
    model = PromptedModel(backbone, 5, vmp=True, vmp_sites=sites, normalization=NORM)
    logits, attention = model(torch.randn(1, 3, 9, 32, 32))
    expected = frames or {"slow": 2, "fast": 8}
    assert logits.shape == (1, 5) and {site: maps.shape[1] for site, maps in attention.items()} == expected
    assert all(maps.shape[-2:] == (32, 32) for maps in attention.values())
    if sites is None:
        assert set(model.prompt_values()) == {f"{site}/{name}" for site in ("slow", "fast") for name in "abmn"}


def test_sites_are_checked():
    with pytest.raises(ValueError, match="vmp_sites must be a non-empty subset of \\['slow', 'fast'\\]"):
        PromptedModel(SlowFast(5, width=8), 5, vmp=True, vmp_sites=["input"], normalization=NORM)
    with pytest.raises(ValueError, match="vmp_sites"):
        PromptedModel(TinyVideoCNN(5), 5, vmp=True, vmp_sites=["slow"], normalization=NORM)


def test_a_given_pn_is_copied_per_site_or_shared():
    pn = LearnableSigmoid(init_m=0.3, init_n=0.2)
    separate = PromptedModel(SlowFast(5, width=8), 5, vmp=True, pn=pn, normalization=NORM)
    assert separate.prompts["slow"].pn is pn and separate.prompts["fast"].pn is not pn
    assert separate.prompts["fast"].pn.m.item() == pytest.approx(0.3)
    shared = PromptedModel(SlowFast(5, width=8), 5, vmp=True, share_prompt=True, normalization=NORM)
    assert list(shared.prompts) == ["shared"] and shared.site_prompts["slow"] is shared.site_prompts["fast"]
    assert isinstance(shared.site_prompts["slow"], MotionPrompt)


def test_normalization_may_come_as_the_dict_checkpoints_store():
    model = PromptedModel(TinyVideoCNN(5), 5, vmp=True, normalization=NORM.as_dict(), reference_luma=True)
    assert model.normalization == NORM and model.prompt.normalization is model.normalization
    assert model.prompt.luma_order == "bgr"  # the luma weights reversed; the pixels stay RGB


def test_the_model_normalises_uint8_clips_itself_with_its_own_statistics():
    """The data delivers uint8; the model's `Normalization` (not the data's) makes them floats on the clip's
    device. A float clip is taken as normalised already."""
    torch.manual_seed(0)
    own = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    model = PromptedModel(TinyVideoCNN(5, width=4), 5, num_frames=4, vmp=True, normalization=own).eval()
    clip = torch.randint(0, 256, (2, 3, 5, 16, 16), dtype=torch.uint8)
    by_hand = (clip.double() / 255 - torch.tensor(own.mean, dtype=torch.float64).view(3, 1, 1, 1)) / torch.tensor(
        own.std, dtype=torch.float64
    ).view(3, 1, 1, 1)
    logits, attention = model(clip)
    expected_logits, expected_attention = model(by_hand.float())
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(attention["input"], expected_attention["input"], atol=1e-6, rtol=0)
    assert PromptedModel(TinyVideoCNN(5), 5).normalization == Normalization()  # Kinetics, as the originals


def test_the_model_refuses_a_clip_of_another_length():
    model = PromptedModel(TinyVideoCNN(5, width=4), 5, num_frames=4, vmp=True)
    assert model.frames_per_clip == frames_per_clip(4, vmp=True) == 5
    with pytest.raises(ValueError, match=r"expected clips B x 3 x 5 x H x W \(T=4 \+ 1 for the motion prompt\)"):
        model(torch.zeros(1, 3, 4, 16, 16, dtype=torch.uint8))
    assert PromptedModel(TinyVideoCNN(5), 5, num_frames=4).frames_per_clip == 4


def test_a_backbone_sized_for_frames_is_built_for_the_models_t():
    """TimeSformer's time embedding follows model.num_frames (one owner); a different T set on the backbone
    itself is an error naming both, whichever way the backbone comes."""
    from functools import partial

    kwargs = dict(img_size=16, patch_size=8, embed_dim=8, depth=1, num_heads=2)
    built = build_backbone(partial(TimeSformer, **kwargs), 5, num_frames=3)
    assert built.num_frames == 3 and built.time_embed.shape[1] == 3
    assert isinstance(build_backbone(lambda k: TinyVideoCNN(k), 5, num_frames=3), TinyVideoCNN)
    with pytest.raises(ValueError, match=r"backbone's num_frames \(6\) differs from model.num_frames \(3\)"):
        build_backbone(partial(TimeSformer, num_frames=6, **kwargs), 5, num_frames=3)
    with pytest.raises(ValueError, match="built for 6 frames, the model for 3"):
        PromptedModel(TimeSformer(5, num_frames=6, **kwargs), 5, num_frames=3)


def test_head_is_found_or_named():
    assert find_head(TinyVideoCNN(7), 7) == "classifier"
    assert find_head(X3D(7, width_factor=1.0, depth_factor=0.5, head_dim=32), 7) == "net.blocks.5.proj"
    named = PromptedModel(TinyVideoCNN(3), 3, head="features.0.0")
    assert named.head_name == "features.0.0" and named.head is named.backbone.features[0][0]
    with pytest.raises(ValueError, match="cannot find the classifier head"):
        PromptedModel(nn.Conv3d(3, 8, 1), 3)
