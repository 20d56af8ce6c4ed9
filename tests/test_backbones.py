"""The paper's backbones with the prompt in front: shapes, the T+1 rule per pathway, bf16, checkpoint formats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import QUIET, run_cli, tiny_data_args
from vmp_lightning.backbones import X3D, SlowFast, TimeSformer, TinyVideoCNN, TorchvisionVideo
from vmp_lightning.backbones.checkpoints import CheckpointMismatchError, load_weights, read_state_dict
from vmp_lightning.backbones.timesformer import resize_pos_embed, resize_time_embed
from vmp_lightning.classifier import VideoClassifier
from vmp_lightning.model import PromptedModel
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import LearnableSigmoid

NORM = Normalization((0.45,) * 3, (0.225,) * 3)
TINY = {
    "tiny_cnn": lambda k: TinyVideoCNN(k, width=4),
    "x3d": lambda k: X3D(k, width_factor=1.0, depth_factor=0.5, head_dim=32, dropout=0.0),
    "slowfast": lambda k: SlowFast(k, width=8, dropout=0.0),
    "timesformer": lambda k: TimeSformer(
        k, num_frames=8, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4
    ),
    "torchvision_r3d": lambda k: TorchvisionVideo(k, "r3d_18"),
}


def classifier(name: str, **kwargs) -> VideoClassifier:
    return VideoClassifier(TINY[name], num_classes=5, normalization=NORM, **kwargs)


CASES = [(name, {}) for name in TINY] + [(name, {"vmp": True}) for name in TINY]
CASES += [("slowfast", {"vmp": True, "vmp_sites": sites}) for sites in (["slow"], ["fast"])]
CASES += [("slowfast", {"vmp": True, "share_prompt": True})]


@pytest.mark.parametrize(("name", "settings"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_backward(name, settings, dtype):
    torch.manual_seed(0)
    model = classifier(name, lambda_v=0.1 if settings.get("vmp") else 0.0, **settings)
    frames = 8 + (1 if settings.get("vmp") else 0)
    clip = torch.randn(2, 3, frames, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits, attention = model(clip)
        loss = nn.functional.cross_entropy(logits.float(), torch.tensor([0, 3]))
    loss.backward()
    assert logits.shape == (2, 5) and torch.isfinite(loss)
    sites = settings.get("vmp_sites", ["slow", "fast"] if name == "slowfast" else ["input"])
    assert set(attention) == (set(sites) if settings.get("vmp") else set())
    for site, maps in attention.items():
        expected = {"slow": 2, "fast": 8, "input": 8}[site]
        assert maps.shape == (2, expected, 32, 32) and maps.dtype == torch.float32
    for layer in model.model.prompts.values():
        assert layer.pn.m.grad is not None and torch.isfinite(layer.pn.m.grad)
    if settings.get("share_prompt"):
        assert len(model.model.prompts) == 1 and model.model.site_prompts["slow"] is model.model.site_prompts["fast"]
    elif name == "slowfast" and settings.get("vmp"):
        assert len(model.model.prompts) == len(sites)


def test_vmp_sites_are_checked():
    with pytest.raises(ValueError, match="vmp_sites must be a non-empty subset"):
        classifier("slowfast", vmp=True, vmp_sites=["input"])
    with pytest.raises(ValueError, match="vmp_sites"):
        classifier("tiny_cnn", vmp=True, vmp_sites=["slow"])
    with pytest.raises(RuntimeError, match="one prompt per site"):
        classifier("slowfast", vmp=True).model.prompt  # noqa: B018


class Recorder(nn.Module):
    """Stands in for the SlowFast network to see which frames reach each pathway."""

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        self.seen = [x.clone() for x in inputs]
        return torch.zeros(inputs[0].shape[0], 5)


def frame_numbered_clip(frames: int) -> torch.Tensor:
    """Frame f holds the value f everywhere (a normalised clip, so prompts scale it)."""
    return torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1, 1).expand(1, 3, frames, 4, 4).clone()


PRETRAINING_SLOW = [0, 4, 8, 13, 17, 22, 26, 31]  # PySlowFast / pytorchvideo: linspace(0, 31, 8), rounded down


@pytest.mark.parametrize(
    ("sites", "slow_frames", "fast_frames"),
    [
        (None, PRETRAINING_SLOW, list(range(32))),  # baseline: 32 frames, slow as in pretraining
        (["slow"], [f + 1 for f in PRETRAINING_SLOW], list(range(1, 33))),  # 33 frames: the same frames, shifted
        (["fast"], [f + 1 for f in PRETRAINING_SLOW], list(range(1, 33))),
        (["slow", "fast"], [f + 1 for f in PRETRAINING_SLOW], list(range(1, 33))),
    ],
)
def test_slowfast_pathway_frames(sites, slow_frames, fast_frames):
    backbone = SlowFast(5, width=8, alpha=4)
    backbone.net = Recorder()
    model = VideoClassifier(
        lambda k: backbone,
        num_classes=5,
        num_frames=32,
        vmp=sites is not None,
        vmp_sites=sites,
        normalization=NORM,
        pn=LearnableSigmoid(init_m=0.0, init_n=-5.0),
        head="net",
    )
    clip = frame_numbered_clip(33 if sites else 32)
    _, attention = model(clip)
    slow, fast = backbone.net.seen
    assert slow.shape[2] == 8 and fast.shape[2] == 32
    # with b < 0 and a positive difference every attention value is ~1, so a prompt keeps its frame's value
    assert slow[0, 0, :, 0, 0].round().tolist() == slow_frames
    assert fast[0, 0, :, 0, 0].round().tolist() == fast_frames
    assert {site: maps.shape[1] for site, maps in attention.items()} == {
        s: {"slow": 8, "fast": 32}[s] for s in sites or []
    }
    with pytest.raises(ValueError, match="alpha x T_slow"):
        model.model.backbone(frame_numbered_clip(34)[:, :, 1:])
    with pytest.raises(ValueError, match=f"expected clips B x 3 x {33 if sites else 32} x H x W"):
        model(frame_numbered_clip(34 if sites else 33))


@pytest.mark.parametrize("share_prompt", [True, False])
def test_slow_prompts_are_the_motion_into_each_slow_frame(share_prompt):
    """A slow prompt is its frame's prompt from the pair (previous frame, frame): what the slow layer computes on
    the whole clip, at the slow positions (with a shared layer: the fast pathway's prompts there)."""
    torch.manual_seed(0)
    backbone = SlowFast(5, width=8, alpha=4)
    backbone.net = Recorder()
    model = PromptedModel(backbone, 5, 32, vmp=True, normalization=NORM, share_prompt=share_prompt, head="net")
    clip = torch.randn(2, 3, 33, 6, 6)
    _, attention = model(clip)
    slow, fast = backbone.net.seen
    index = torch.tensor(PRETRAINING_SLOW)
    maps = model.site_prompts["slow"].attention(clip)  # T_fast maps of the pairs (f_t, f_t+1)
    torch.testing.assert_close(attention["slow"], maps[:, index], rtol=0, atol=1e-7)
    torch.testing.assert_close(slow, maps[:, index].unsqueeze(1) * clip[:, :, index + 1], rtol=0, atol=1e-7)
    torch.testing.assert_close(fast, model.site_prompts["fast"](clip)[0], rtol=0, atol=0)
    if share_prompt:
        torch.testing.assert_close(slow, fast[:, :, index], rtol=0, atol=0)
    else:
        assert not torch.allclose(slow, fast[:, :, index])  # two layers with their own parameters


def test_timesformer_crop_must_fit_the_patches():
    model = TINY["timesformer"](5)
    with pytest.raises(ValueError, match=r"divisible by its patch size 8, got 30 x 32: set data\.crop_size"):
        model(torch.randn(1, 3, 8, 30, 32))


def test_torchvision_adapter_rejects_unknown_models():
    with pytest.raises(ValueError, match="no model 'r9d'"):
        TorchvisionVideo(5, "r9d")


# --- TimeSformer ---------------------------------------------------------------------------------------------
def reference_divided_block(block, x: torch.Tensor, frames: int, patches: int) -> torch.Tensor:
    """The original TimeSformer block, written out with explicit token bookkeeping (tokens ordered (n t))."""
    cls, tokens = x[:, 0], x[:, 1:]
    index = lambda n, t: n * frames + t  # noqa: E731
    temporal = torch.zeros_like(tokens)
    for n in range(patches):
        track = torch.stack([tokens[:, index(n, t)] for t in range(frames)], dim=1)
        out = block.temporal_attn(block.temporal_norm1(track))
        for t in range(frames):
            temporal[:, index(n, t)] = out[:, t]
    xt = tokens + block.temporal_fc(temporal)
    spatial = torch.zeros_like(xt)
    cls_updates = []
    for t in range(frames):
        frame_tokens = torch.stack([xt[:, index(n, t)] for n in range(patches)], dim=1)
        out = block.attn(block.norm1(torch.cat([cls[:, None], frame_tokens], dim=1)))
        cls_updates.append(out[:, 0])
        for n in range(patches):
            spatial[:, index(n, t)] = out[:, 1 + n]
    x = torch.cat([cls[:, None], xt], dim=1) + torch.cat(
        [torch.stack(cls_updates, 1).mean(1, keepdim=True), spatial], 1
    )
    return x + block.mlp(block.norm2(x))


def test_divided_attention_matches_the_original_formulation():
    torch.manual_seed(0)
    model = TimeSformer(
        5, num_frames=3, img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, drop_path_rate=0.0
    ).eval()
    block = model.blocks[0]
    nn.init.normal_(block.temporal_fc.weight, std=0.1)
    x = torch.randn(2, 1 + 4 * 3, 16)
    torch.testing.assert_close(block(x, 3, 4), reference_divided_block(block, x, 3, 4), atol=1e-5, rtol=1e-5)


def reference_space_only_features(model: TimeSformer, clip: torch.Tensor) -> torch.Tensor:
    """The original's forward_features for attention_type "space_only", written out: frames as batch, pos_embed
    added, blocks with plain attention, then (b t) n m -> b t n m, mean over t, norm, class token."""
    batch, _, frames, height, width = clip.shape
    x = model.patch_embed(clip.permute(0, 2, 1, 3, 4).reshape(batch * frames, 3, height, width))
    x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + model.pos_embed
    for block in model.blocks:
        x = x + block.attn(block.norm1(x))
        x = x + block.mlp(block.norm2(x))
    x = x.reshape(batch, frames, x.shape[1], x.shape[2]).mean(1)
    return model.norm(x)[:, 0]


def test_space_only_pools_frames_as_the_original():
    torch.manual_seed(0)
    model = TimeSformer(
        5, num_frames=3, img_size=16, patch_size=8, embed_dim=16, depth=2, num_heads=2, attention_type="space_only"
    ).eval()
    nn.init.normal_(model.norm.weight, mean=1.0, std=0.5)  # a norm that is not the identity tells the orders apart
    clip = torch.randn(2, 3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(clip), reference_space_only_features(model, clip))


def test_embedding_resizing():
    pos = torch.randn(1, 1 + 16, 8)
    resized = resize_pos_embed(pos, (2, 2))
    assert resized.shape == (1, 5, 8) and torch.equal(resized[:, 0], pos[:, 0])
    assert resize_pos_embed(pos, (4, 4)) is pos
    time = torch.arange(4.0).view(1, 4, 1).expand(1, 4, 3)
    stretched = resize_time_embed(time, 8)
    assert stretched.shape == (1, 8, 3) and torch.all(stretched[0, 1:, 0] >= stretched[0, :-1, 0])


def test_original_embedding_resize_rules(tmp_path):
    """The original TimeSformer: at load, pos_embed by nearest over the flattened sequence and time_embed by
    nearest (helpers.load_pretrained); in the forward pass, pos_embed by nearest over the patch grid (vit.py)."""
    torch.manual_seed(0)
    small = TimeSformer(5, num_frames=4, img_size=32, patch_size=8, embed_dim=8, depth=1, num_heads=2)
    bigger = TimeSformer(5, num_frames=8, img_size=48, patch_size=8, embed_dim=8, depth=1, num_heads=2)
    state, resized = bigger.adapt_state_dict(small.state_dict())
    assert resized == ["pos_embed", "time_embed"]
    pos, time = small.pos_embed.detach(), small.time_embed.detach()
    other = nn.functional.interpolate(pos[0, 1:, :].unsqueeze(0).transpose(1, 2), size=36, mode="nearest")
    torch.testing.assert_close(
        state["pos_embed"], torch.cat((pos[0, 0, :].unsqueeze(0).unsqueeze(1), other.transpose(1, 2)), 1)
    )
    expected_time = nn.functional.interpolate(time.transpose(1, 2), size=8, mode="nearest").transpose(1, 2)
    torch.testing.assert_close(state["time_embed"], expected_time)
    grid = resize_pos_embed(pos, (6, 4), "nearest")  # forward pass on a 48 x 32 crop
    reference = nn.functional.interpolate(
        pos[0, 1:, :].unsqueeze(0).transpose(1, 2).reshape(1, 8, 4, 4), size=(6, 4), mode="nearest"
    )
    torch.testing.assert_close(grid[:, 1:], reference.flatten(2).transpose(1, 2))
    smooth = TimeSformer(
        5, num_frames=8, img_size=48, patch_size=8, embed_dim=8, depth=1, num_heads=2, embed_resize="interpolate"
    )
    state, _ = smooth.adapt_state_dict(small.state_dict())
    torch.testing.assert_close(state["pos_embed"], resize_pos_embed(pos, (6, 6), "bicubic"))
    torch.testing.assert_close(state["time_embed"], resize_time_embed(time, 8, "linear"))
    with pytest.raises(ValueError, match="embed_resize"):
        TimeSformer(5, embed_resize="cubic")


# --- checkpoints ---------------------------------------------------------------------------------------------
def outputs(model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        result = model(clip)
    return result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize(
    ("name", "save"),
    [
        ("slowfast", lambda b: {"model_state": b.net.state_dict()}),  # pytorchvideo hub / PySlowFast .pyth
        ("x3d", lambda b: {"model_state": b.net.state_dict()}),
        ("timesformer", lambda b: {"model_state": {f"model.{k}": v for k, v in b.state_dict().items()}}),
        ("torchvision_r3d", lambda b: b.net.state_dict()),  # a plain state dict
    ],
)
def test_checkpoint_round_trip_in_the_original_layout(name, save, tmp_path):
    torch.manual_seed(1)
    original = TINY[name](5)
    path = tmp_path / "weights.pyth"
    torch.save(save(original), path)
    torch.manual_seed(2)
    model = classifier(name, init_checkpoint=str(path))
    clip = torch.randn(2, 3, 8, 32, 32)
    torch.testing.assert_close(outputs(model, clip), outputs(original, clip))
    report = model.checkpoint_report
    assert report.fraction == 1.0 and not report.missing and not report.reinitialised


def test_head_is_replaced_for_a_new_number_of_classes(tmp_path):
    torch.manual_seed(1)
    kinetics = SlowFast(400, width=8, dropout=0.0)
    torch.save({"model_state": kinetics.net.state_dict()}, tmp_path / "k400.pyth")
    model = classifier("slowfast", vmp=True, init_checkpoint=str(tmp_path / "k400.pyth"))
    report = model.checkpoint_report
    assert report.reinitialised == ["backbone.net.blocks.6.proj.bias", "backbone.net.blocks.6.proj.weight"]
    assert set(report.missing) == {k for k in model.model.state_dict() if k.startswith("prompts.")}
    stem = "backbone.net.blocks.0.multipathway_blocks.0.conv.weight"
    torch.testing.assert_close(model.model.state_dict()[stem], kinetics.net.state_dict()[stem[len("backbone.net.") :]])
    assert "reinitialised     2" in report.summary()


def test_timesformer_embeddings_are_interpolated_at_load(tmp_path):
    small = TimeSformer(5, num_frames=4, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4)
    torch.save({"model_state": {f"model.{k}": v for k, v in small.state_dict().items()}}, tmp_path / "t.pyth")
    bigger = lambda k: TimeSformer(k, num_frames=8, img_size=48, patch_size=8, embed_dim=32, depth=2, num_heads=4)  # noqa: E731
    model = VideoClassifier(bigger, num_classes=5, init_checkpoint=str(tmp_path / "t.pyth"))
    assert model.checkpoint_report.reshaped == ["backbone.pos_embed", "backbone.time_embed"]
    assert model.model.backbone.pos_embed.shape == (1, 37, 32) and model.model.backbone.time_embed.shape == (1, 8, 32)
    assert torch.isfinite(outputs(model, torch.randn(1, 3, 8, 48, 48))).all()


def test_timm_vit_weights_initialise_the_spatial_part(tmp_path):
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=1000)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    model = classifier("timesformer", init_checkpoint=str(tmp_path / "vit.pth"))
    report = model.checkpoint_report
    assert "backbone.blocks.0.attn.qkv.weight" in report.loaded and "backbone.patch_embed.proj.weight" in report.loaded
    assert "backbone.time_embed" in report.missing and not any("temporal_attn" in k for k in report.missing)
    for block, spatial in zip(model.model.backbone.blocks, vit.blocks, strict=True):  # the original's ImageNet start
        torch.testing.assert_close(block.temporal_attn.qkv.weight, spatial.attn.qkv.weight)
        torch.testing.assert_close(block.temporal_attn.proj.bias, spatial.attn.proj.bias)
        torch.testing.assert_close(block.temporal_norm1.weight, spatial.norm1.weight)
    assert model.model.backbone.blocks[1].temporal_fc.weight.abs().sum() == 0
    assert report.reinitialised == ["backbone.head.bias", "backbone.head.weight"]
    torch.testing.assert_close(model.model.backbone.blocks[1].mlp.fc1.weight, vit.blocks[1].mlp.fc1.weight)


def test_url_sources_are_downloaded_once_into_the_cache(tmp_path):
    original = TINY["x3d"](5)
    torch.save({"model_state": original.net.state_dict()}, tmp_path / "x3d.pyth")
    cache = tmp_path / "cache"
    state = read_state_dict((tmp_path / "x3d.pyth").as_uri(), cache_dir=str(cache))
    assert (cache / "x3d.pyth").is_file() and set(state) == set(original.net.state_dict())


def test_timm_tag_without_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="cannot get timm's pretrained weights 'timm:vit_tiny_patch16_224'"):
        read_state_dict("timm:vit_tiny_patch16_224")


def test_any_torchvision_model_from_yaml(synthetic_root, tmp_path):
    from vmp_lightning.cli import build_cli

    config = tmp_path / "r3d.yaml"
    config.write_text(
        "model:\n  init_args:\n    vmp: true\n    backbone:\n"
        "      class_path: vmp_lightning.backbones.TorchvisionVideo\n      init_args: {name: r3d_18}\n"
    )
    args = [
        "fit",
        f"--config={config}",
        *tiny_data_args(synthetic_root),
        "--trainer.fast_dev_run=1",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    cli = build_cli(args)
    assert type(cli.model.model.backbone.net).__name__ == "VideoResNet" and cli.model.model.head_name == "net.fc"
    assert cli.trainer.global_step == 1


def test_lightning_checkpoint_restores_prompts_too(tmp_path):
    trained = classifier("tiny_cnn", vmp=True, pn=LearnableSigmoid(init_m=0.7, init_n=-0.3))
    torch.save({"state_dict": trained.state_dict(), "pytorch-lightning_version": "2.6.6"}, tmp_path / "run.ckpt")
    model = classifier("tiny_cnn", vmp=True, init_checkpoint=str(tmp_path / "run.ckpt"))
    assert model.model.prompt.pn.m.item() == pytest.approx(0.7) and model.model.prompt.pn.n.item() == pytest.approx(
        -0.3
    )
    assert not model.checkpoint_report.missing


def authors_forward(timesformer: TimeSformer, m: torch.Tensor, n: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """q1xiangchen/VMPs' forward written out: de-normalise with 0.45 / 0.225, grey with the weights of a BGR
    reader (B 0.114, G 0.587, R 0.299 for channels 0, 1, 2), frame differences, their m_sigmoid, the map times
    the later frame, then TimeSformer."""
    seq = x.permute(0, 2, 1, 3, 4)  # BCTHW -> BTCHW
    grey = torch.einsum("btchw, c -> bthw", seq * 0.225 + 0.45, torch.tensor([0.114, 0.587, 0.299]))
    diff = grey[:, 1:] - grey[:, :-1]
    attention = 1 / (1 + torch.exp(-(5 / (0.45 * torch.abs(torch.tanh(m)) + 1e-1)) * (diff - 0.6 * torch.tanh(n))))
    prompt = attention.unsqueeze(2).repeat(1, 1, 3, 1, 1) * seq[:, 1:]
    return timesformer(prompt.permute(0, 2, 1, 3, 4))


def test_the_authors_vmp_checkpoint_gives_their_logits(tmp_path):
    torch.manual_seed(3)
    original = TINY["timesformer"](5).eval()
    m, n = torch.tensor([0.2646]), torch.tensor([-0.6615])  # HMDB-51's published values, shape [1] as saved
    state = {f"model.{k}": v for k, v in original.state_dict().items()} | {"vmps.m": m, "vmps.n": n}
    torch.save({"model_state": state}, tmp_path / "authors.pyth")
    model = PromptedModel(TINY["timesformer"](5), 5, vmp=True, normalization=NORM, reference_luma=True).eval()
    report = model.load_pretrained(tmp_path / "authors.pyth")
    assert report.fraction == 1.0 and not report.unexpected and not report.missing and not report.notes
    assert model.prompt.pn.m.shape == () and model.prompt.pn.m.item() == pytest.approx(0.2646)
    clip = torch.randn(2, 3, 9, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip)[0], authors_forward(original, m, n, clip), atol=1e-4, rtol=0)
    as_written = PromptedModel(TINY["timesformer"](5), 5, vmp=True, normalization=NORM)
    assert "set model.reference_luma true" in as_written.load_pretrained(tmp_path / "authors.pyth").summary()


def test_the_report_counts_every_key_of_the_checkpoint(tmp_path):
    trained = classifier("tiny_cnn", vmp=True)
    state = {f"model.{k}": v for k, v in trained.model.state_dict().items()} | {"ema.decay": torch.tensor(0.99)}
    torch.save({"state_dict": state}, tmp_path / "run.ckpt")
    baseline = PromptedModel(TINY["tiny_cnn"](5), 5)  # vmp off: the prompt has nowhere to go
    report = baseline.load_pretrained(tmp_path / "run.ckpt")
    assert report.unexpected == ["ema.decay", "prompts.input.pn.m", "prompts.input.pn.n"]
    assert "no prompt layer: ['prompts.input.pn.m', 'prompts.input.pn.n']" in report.summary()
    assert report.fraction == 1.0


def test_a_checkpoint_that_matches_almost_nothing_is_an_error(tmp_path):
    torch.save({"model_state": {"encoder.layer.0.weight": torch.zeros(3, 3)}}, tmp_path / "other.pyth")
    with pytest.raises(CheckpointMismatchError, match=r"(?s)0.0 % of the model.*wrong file"):
        classifier("x3d", init_checkpoint=str(tmp_path / "other.pyth"))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_state_dict(tmp_path / "nope.pyth")
    wrong_size = SlowFast(5, width=16, dropout=0.0)  # every conv has another shape
    torch.save({"model_state": wrong_size.net.state_dict()}, tmp_path / "wide.pyth")
    with pytest.raises(CheckpointMismatchError):
        load_weights(classifier("slowfast").model, tmp_path / "wide.pyth")


@pytest.mark.slow
def test_slowfast_fast_only_vmp_under_ddp(synthetic_root, tmp_path):
    from pathlib import Path

    args = [
        "fit",
        f"--config={Path(__file__).parents[1] / 'configs' / 'trainer' / 'cpu_ddp.yaml'}",
        *tiny_data_args(synthetic_root),
        "--model.backbone=vmp_lightning.backbones.SlowFast",
        "--model.backbone.width=8",
        "--model.vmp=true",
        "--model.vmp_sites=[fast]",
        "--model.lambda_v=0.5",
        "--trainer.max_steps=2",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    (config_file,) = tmp_path.glob("**/config.yaml")
    config = config_file.read_text()
    assert "vmp_lightning.backbones.SlowFast" in config and "- fast" in config
    assert "train/V" in (config_file.parent / "metrics.csv").read_text().splitlines()[0]


def test_the_load_report_is_logged(synthetic_root, tmp_path):
    from vmp_lightning.cli import build_cli

    torch.save({"model_state": TinyVideoCNN(4, width=32).state_dict()}, tmp_path / "init.pyth")
    args = [
        "fit",
        *tiny_data_args(synthetic_root),
        f"--model.init_checkpoint={tmp_path / 'init.pyth'}",
        "--trainer.max_steps=1",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    cli = build_cli(args)
    assert cli.model.checkpoint_report.fraction == 1.0
    import yaml

    (hparams_file,) = tmp_path.glob("**/hparams.yaml")
    hparams = yaml.safe_load(hparams_file.read_text())
    entries = len(TinyVideoCNN(4, width=32).state_dict())
    assert hparams["init_checkpoint/loaded"] == entries and hparams["init_checkpoint/fraction"] == 1.0


def test_slowfast_gradients_under_bf16_on_short_clips_match_float32():
    """PyTorch's bf16 CPU convolution gave the slow pathway's temporal convolutions (kernel 3) inf / NaN weight
    gradients on 2-frame inputs; a PromptedModel runs those convolutions in float32 there."""
    torch.manual_seed(0)
    model = PromptedModel(SlowFast(4, width=16, dropout=0.0), 4)
    clip, labels = torch.randn(4, 3, 8, 32, 32), torch.tensor([0, 1, 2, 3])
    grads = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(clip)[0].float(), labels)
        loss.backward()
        grads[name] = {n: p.grad.clone() for n, p in model.named_parameters() if "conv_a" in n}
    for name, grad in grads["bf16"].items():
        assert torch.isfinite(grad).all(), name
        assert (grad - grads["fp32"][name]).abs().max() <= 0.1 * grads["fp32"][name].abs().max() + 1e-3, name


def conv_under_bf16(frames: int) -> tuple[nn.Conv3d, dict]:
    """One bf16-autocast step of a prompted r3d_18 on ``frames`` frames at 32 px, with the input, output dtype and
    output gradient of its third stage's first temporal convolution (2 frames in for an 8-frame clip)."""
    torch.manual_seed(0)
    model = PromptedModel(TorchvisionVideo(4, name="r3d_18"), 4, num_frames=frames)
    conv, seen = model.backbone.net.layer3[0].conv2[0], {}
    conv.register_forward_hook(lambda m, args, out: seen.update(x=args[0].detach(), out=out.dtype))
    conv.register_full_backward_hook(lambda m, grad_in, grad_out: seen.update(grad_out=grad_out[0].detach()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(2, 3, frames, 32, 32))[0]
    logits.float().logsumexp(1).sum().backward()
    return conv, seen


def test_any_backbone_runs_temporal_convolutions_on_too_short_inputs_in_float32():
    """The fault is not SlowFast's: r3d_18's third stage got 6e35 weight gradients under bf16 on a CPU without AMX
    (CI; here with ONEDNN_MAX_CPU_ISA=AVX512_CORE). Its weight gradient is now float32's for the same input."""
    conv, seen = conv_under_bf16(frames=8)
    assert seen["x"].shape[2] == 2 < conv.kernel_size[0] and seen["x"].dtype == seen["out"] == torch.float32
    expected = torch.nn.grad.conv3d_weight(seen["x"], conv.weight.shape, seen["grad_out"].float(), padding=1)
    torch.testing.assert_close(conv.weight.grad, expected, rtol=1e-5, atol=1e-7)
    conv, seen = conv_under_bf16(frames=16)  # 4 frames >= the kernel: bf16 as autocast wants
    assert seen["x"].dtype == seen["out"] == torch.bfloat16
    assert torch.is_autocast_enabled("cpu") is False  # the hooks left no autocast state behind


def test_the_guard_keeps_names_classes_and_pickling():
    import pickle

    from vmp_lightning.backbones.short_clips import guard_short_clips

    backbone = TorchvisionVideo(4, name="r3d_18")
    names, classes = list(backbone.state_dict()), [type(m) for m in backbone.modules()]
    model = PromptedModel(backbone, 4)
    guard_short_clips(model)  # twice: still one pair of hooks
    assert list(backbone.state_dict()) == names and [type(m) for m in backbone.modules()] == classes
    assert len(backbone.net.layer3[0].conv2[0]._forward_pre_hooks) == 1
    clone = pickle.loads(pickle.dumps(model))
    clip = torch.randn(1, 3, 8, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(clone(clip)[0], model(clip)[0])
