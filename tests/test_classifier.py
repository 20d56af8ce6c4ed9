"""VideoClassifier: loss, V, param groups, freezing, head detection, bad settings, earlier checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import REPO, tiny_classifier
from vmp_lightning.backbones import X3D
from vmp_lightning.classifier import VideoClassifier
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import Gamma, LearnableSigmoid, temporal_variation

NORM = Normalization((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))


def tiny(**kwargs) -> VideoClassifier:
    return tiny_classifier(**{"normalization": NORM, **kwargs})


def batch(frames: int) -> dict:
    torch.manual_seed(0)
    return {
        "video": torch.randn(2, 3, frames, 16, 16),
        "label": torch.tensor([1, 3]),
        "video_id": ["a", "b"],
        "view": torch.tensor([0, 0]),
    }


class Recorder:
    """Stands in for `self.log` to see what a step logs."""

    def __init__(self) -> None:
        self.logged: dict[str, float] = {}

    def __call__(self, name, value, **kwargs) -> None:
        self.logged[name] = value

    def log_dict(self, values, **kwargs) -> None:
        self.logged.update(values)


def run_training_step(model: VideoClassifier, data: dict) -> tuple[torch.Tensor, dict]:
    recorder = Recorder()
    model.log, model.log_dict = recorder, recorder.log_dict
    model.optimizers = lambda: torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    return model.training_step(data, 0), recorder.logged


def test_loss_is_cross_entropy_plus_lambda_v():
    model = tiny(vmp=True, lambda_v=0.7, pn=LearnableSigmoid(init_m=0.3, init_n=0.1))
    data = batch(9)
    loss, logged = run_training_step(model, data)
    logits, attention = model(data["video"])
    ce = nn.functional.cross_entropy(logits, data["label"])
    variation = temporal_variation(attention["input"])
    assert attention["input"].shape == (2, 8, 16, 16)
    torch.testing.assert_close(loss, ce + 0.7 * variation)
    torch.testing.assert_close(logged["train/V"], variation)
    assert {"prompt/a", "prompt/b", "prompt/m", "prompt/n", "train/loss", "train/ce"} <= set(logged)
    assert logged["prompt/m"] == pytest.approx(0.3)


def test_v_is_skipped_when_lambda_is_zero(monkeypatch):
    model = tiny(vmp=True, lambda_v=0.0)
    monkeypatch.setattr("vmp_lightning.classifier.temporal_variation", lambda *a, **k: pytest.fail("V computed"))
    loss, logged = run_training_step(model, batch(9))
    assert "train/V" not in logged and torch.isfinite(loss)


def test_v_joins_the_validation_loss_with_its_weight():
    model = tiny(vmp=True, lambda_v=0.5)
    recorder = Recorder()
    model.log, model.log_dict = recorder, lambda *a, **k: None
    model.validation_step(batch(9), 0)
    logged = recorder.logged
    assert logged["val/V"] > 0
    assert float(logged["val/loss"]) == pytest.approx(float(logged["val/ce"]) + 0.5 * float(logged["val/V"]))


def test_v_needs_three_frames():
    with pytest.raises(ValueError, match=r"lambda_v 1.0 needs model.num_frames >= 2"):
        tiny(vmp=True, lambda_v=1.0, num_frames=1)


def test_baseline_has_no_prompt_and_takes_t_frames():
    model = tiny()
    assert model.model.prompt is None
    logits, attention = model(batch(8)["video"])
    assert logits.shape == (2, 5) and attention == {}


def test_bad_settings_are_clear():
    with pytest.raises(ValueError, match="vmp is off"):
        tiny(lambda_v=0.5)
    with pytest.raises(ValueError, match="lambda_v must be >= 0"):
        tiny(vmp=True, lambda_v=-1)
    with pytest.raises(ValueError, match="cannot find the classifier head"):
        VideoClassifier(lambda k: nn.Conv3d(3, 8, 1), num_classes=3)


def test_reference_luma_uses_bgr_weights_on_rgb_input():
    torch.manual_seed(0)
    pn = dict(init_m=0.2, init_n=0.0)
    ours = tiny(vmp=True, pn=LearnableSigmoid(**pn)).model.prompt
    reference = tiny(vmp=True, pn=LearnableSigmoid(**pn), reference_luma=True).model.prompt
    assert ours.luma_order == "rgb" and reference.luma_order == "bgr"
    x = torch.randn(1, 3, 3, 8, 8)
    assert (ours.attention(x) - reference.attention(x)).abs().max() > 1e-3


def test_prompt_has_its_own_param_group():
    model = tiny(
        vmp=True,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.01, weight_decay=1e-4),
        prompt_lr_scale=10.0,
        prompt_weight_decay=0.0,
    )
    optimizer = model.configure_optimizers()
    backbone_group, prompt_group = optimizer.param_groups
    assert prompt_group["lr"] == pytest.approx(0.1) and prompt_group["weight_decay"] == 0.0
    assert backbone_group["lr"] == pytest.approx(0.01) and backbone_group["weight_decay"] == 1e-4
    assert {id(p) for p in prompt_group["params"]} == {id(model.model.prompt.pn.m), id(model.model.prompt.pn.n)}
    every = {id(p) for p in model.parameters()}
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == every


def test_default_prompt_group_matches_the_reference():
    model = tiny(vmp=True, optimizer=lambda params: torch.optim.SGD(params, lr=0.005, weight_decay=1e-4))
    backbone_group, prompt_group = model.configure_optimizers().param_groups
    assert prompt_group["lr"] == backbone_group["lr"] and prompt_group["weight_decay"] == 1e-4


def test_batchnorm_parameters_get_their_own_weight_decay():
    model = VideoClassifier(
        lambda k: X3D(k, width_factor=1.0, depth_factor=0.5, head_dim=32),
        num_classes=4,
        vmp=True,
        normalization=NORM,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1, weight_decay=5e-5),
        bn_weight_decay=0.0,
    )
    groups = {g["name"]: g for g in model.configure_optimizers().param_groups}
    assert set(groups) == {"backbone", "bn", "prompt"}
    assert groups["bn"]["weight_decay"] == 0.0 and groups["bn"]["lr"] == 0.1
    assert groups["backbone"]["weight_decay"] == 5e-5 and groups["prompt"]["weight_decay"] == 5e-5
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert {id(p) for g in groups.values() if g["name"] == "bn" for p in g["params"]} == {
        id(p) for m in norms for p in m.parameters()
    }
    convs = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv3d)}
    assert convs <= {id(p) for p in groups["backbone"]["params"]}
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))
    default = tiny(optimizer=lambda params: torch.optim.SGD(params, lr=0.1, weight_decay=5e-5))
    assert [g["name"] for g in default.configure_optimizers().param_groups] == ["backbone"]


def test_a_frozen_backbone_keeps_the_heads_dropout_active():
    model = VideoClassifier(
        lambda k: X3D(k, width_factor=1.0, depth_factor=0.5, head_dim=32, dropout=0.5),
        num_classes=4,
        train_backbone=False,
    )
    model.train()
    dropout = model.model.backbone.net.blocks[-1].dropout
    assert model.model.head_dropout() == [dropout]
    assert dropout.training and model.model.head.training and not model.model.backbone.net.blocks[1].training
    features = torch.ones(1, 32)
    assert (dropout(features) == 0).any()  # active: some features dropped
    model.eval()
    assert not dropout.training
    assert tiny().model.head_dropout() == []  # a head at the top has no dropout of its own


def test_a_cosine_schedule_continues_over_a_new_run_length():
    """A run of 1 epoch stands at lr 0; extended to 4 epochs it continues at the cosine's value for epoch 1 of 4,
    and torch's own steps then follow the closed form to the end."""
    from vmp_lightning.optim import follow_run_length

    model = tiny(lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1))
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    base = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    follow_run_length(scheduler, 4)
    for epoch in range(1, 4):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(base * (1 + math.cos(math.pi * epoch / 4)) / 2)
        optimizer.step()
        scheduler.step()
    assert scheduler.T_max == 4 and optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("switches", "expected"),
    [
        (dict(train_backbone=False), {"head", "prompt"}),  # Table 1 "*": frozen backbone
        (dict(train_backbone=False, train_prompt=False), {"head"}),
        (dict(train_head=False), {"body", "prompt"}),
        (dict(train_prompt=False), {"body", "head"}),
        (dict(), {"body", "head", "prompt"}),
    ],
)
def test_freezing_switches(switches, expected):
    model = tiny(vmp=True, **switches)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    parts = {"prompt" if n.startswith("model.prompts") else "head" if "classifier" in n else "body" for n in names}
    assert parts == expected
    optimizer = model.configure_optimizers()
    assert all(p.requires_grad for g in optimizer.param_groups for p in g["params"])


def test_frozen_backbone_keeps_batchnorm_statistics():
    model = tiny(train_backbone=False, num_frames=4)
    model.train()
    bn = model.model.backbone.features[0][1]
    head = model.model.backbone.classifier
    assert not bn.training and head.training
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 4, 16, 16) * 3 + 1)
    torch.testing.assert_close(bn.running_mean, before)


def test_baseline_pn_plugs_in():
    model = tiny(vmp=True, pn=Gamma(0.5, learnable=True, input_mode="abs"), num_frames=4)
    loss, logged = run_training_step(model, batch(5))
    assert "prompt/gamma" in logged
    loss.backward()
    assert model.model.prompt.pn.gamma.grad is not None


def test_x3d_any_input_size_gives_logits():
    net = X3D(6, width_factor=1.0, depth_factor=0.5, head_dim=32)
    for shape in [(1, 3, 4, 32, 32), (2, 3, 7, 48, 40)]:
        out = net(torch.randn(shape))
        assert out.shape == (shape[0], 6)
    net.eval()  # the hub builder's softmax is gone: eval outputs are logits, not probabilities
    assert not torch.allclose(net(torch.randn(2, 3, 4, 32, 32)).sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="X3D size"):
        X3D(3, size="xxl")


def test_a_checkpoint_of_version_0_1_loads_with_the_same_outputs():
    """The fixture and its outputs on a fixed clip were written by the code before `PromptedModel`."""
    fixtures = REPO / "tests" / "fixtures"
    model = VideoClassifier.load_from_checkpoint(fixtures / "checkpoint_v0.ckpt").eval()
    expected = torch.load(fixtures / "checkpoint_v0_outputs.pt", weights_only=True)
    with torch.no_grad():
        logits, attention = model(expected["clip"])
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-6)
    torch.testing.assert_close(attention["input"], expected["attention"], rtol=0, atol=1e-6)
    assert model.hparams.v_reduction == "per_pair" and "v_normalization" not in model.hparams


def test_a_checkpoint_of_version_0_2_loads_with_the_same_outputs():
    """Written by `fit` before the model owned its clip contract (TimeSformer, VMP, T=4 set on the data, the data's
    own mean / std): T comes back from the backbone, the normalisation is the model's, a uint8 clip gives the
    outputs the old model gave on the data's normalised clip."""
    fixtures = REPO / "tests" / "fixtures"
    model = VideoClassifier.load_from_checkpoint(fixtures / "checkpoint_v0_2.ckpt").eval()
    expected = torch.load(fixtures / "checkpoint_v0_2_outputs.pt", weights_only=True)
    assert expected["clip"].dtype == torch.uint8 and model.model.frames_per_clip == 5 == model.hparams.num_frames + 1
    assert model.model.normalization == Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    with torch.no_grad():
        logits, attention = model(expected["clip"])
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-6)
    torch.testing.assert_close(attention["input"], expected["attention"], rtol=0, atol=1e-6)


def test_the_class_path_of_earlier_versions_still_names_the_classifier():
    import vmp_lightning.module

    assert vmp_lightning.module.VideoClassifier is VideoClassifier


def test_a_training_step_logs_only_what_reaches_a_logger(tmp_path, monkeypatch):
    """Each `self.log` costs Lightning ~0.2-2 ms: a step logs the losses (their epoch means need every step), the
    prompt's values only on the steps a logger writes, and the training accuracy once per epoch, over all clips."""
    import csv

    import lightning as L
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(0)
    items = [
        {"video": torch.randn(4, 3, 5, 16, 16, generator=generator), "label": torch.tensor([0, 1, 2, 3])}
        for _ in range(6)
    ]
    classifier = tiny(vmp=True, num_frames=4)
    logged_at: dict[int, set[str]] = {}
    log = VideoClassifier.log

    def recording_log(self, name, value, **kwargs):
        if self.trainer.training:
            logged_at.setdefault(self.global_step, set()).add(name)
        return log(self, name, value, **kwargs)

    monkeypatch.setattr(VideoClassifier, "log", recording_log)
    hits = []
    update = classifier.train_accuracy.update
    monkeypatch.setattr(classifier.train_accuracy, "update", lambda logits, labels: (hits.append(
        (logits.argmax(1) == labels).sum().item()), update(logits, labels)))  # fmt: skip
    trainer = L.Trainer(
        max_epochs=1, logger=CSVLogger(tmp_path), log_every_n_steps=3, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(classifier, DataLoader(items, batch_size=None))
    prompt = {"prompt/a", "prompt/b", "prompt/m", "prompt/n"}
    assert [logged_at[step] for step in (0, 1, 3, 4)] == [{"train/ce", "train/loss"}] * 4
    assert logged_at[2] == logged_at[5] == {"train/ce", "train/loss", *prompt}
    rows = list(csv.DictReader(next(tmp_path.glob("**/metrics.csv")).open()))
    assert [int(row["step"]) for row in rows if row.get("prompt/a")] == [2, 5]  # beside the step losses
    assert all(row["train/loss_step"] for row in rows if row.get("prompt/a"))
    (epoch_row,) = [row for row in rows if row.get("train/acc1")]
    assert float(epoch_row["train/acc1"]) == pytest.approx(sum(hits) / 24)
    assert trainer.callback_metrics["train/acc1"] == pytest.approx(sum(hits) / 24)
    last_written = [float(row["prompt/a"]) for row in rows if row.get("prompt/a")][-1]
    assert float(trainer.callback_metrics["prompt/a"]) == pytest.approx(last_written)
