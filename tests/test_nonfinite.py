"""A NaN / Inf loss never reaches the weights: the run stops naming the batch (or skips it when asked), no
checkpoint holds non-finite weights, and an exploding loss is warned about."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import tiny_classifier
from vmp_lightning.classifier import VideoClassifier
from vmp_lightning.nonfinite import NonFiniteLossError
from vmp_lightning.normalization import Normalization

NORM = Normalization((0.45,) * 3, (0.225,) * 3)


def batches(count: int, poisoned: int | None = None, scale: float = 1.0) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    items = []
    for index in range(count):
        video = torch.randn(2, 3, 4, 16, 16, generator=generator) * scale
        if index == poisoned:
            video[0, 1, 2, 5, 5] = float("nan")  # one NaN pixel
        items.append({"video": video, "label": torch.tensor([1, 3]), "video_id": [f"v{index}a", f"v{index}b"]})
    return items


def trainer(tmp_path, steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, limit_val_batches=0,
    )  # fmt: skip


def model(**kwargs) -> VideoClassifier:
    return tiny_classifier(num_frames=4, normalization=NORM, **kwargs)


def finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def test_a_nan_pixel_stops_the_run_naming_the_batch(tmp_path):
    classifier = model()
    loader = DataLoader(batches(4, poisoned=2), batch_size=None)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 0, step 2; batch videos: v2a, v2b"):
        trainer(tmp_path, 4).fit(classifier, loader)
    assert finite(classifier) and all(torch.isfinite(b).all() for b in classifier.buffers())  # no step, stats kept


def test_skip_leaves_the_batch_out_and_trains_on(tmp_path):
    classifier = model(on_nonfinite_loss="skip")
    fitted = trainer(tmp_path, 5)
    with pytest.warns(UserWarning, match=r"non-finite loss at epoch 0, step 2 \(videos v2a, v2b\): batch skipped"):
        fitted.fit(classifier, DataLoader(batches(6, poisoned=2), batch_size=None))
    assert classifier.guard.skipped == 1 and finite(classifier) and fitted.global_step == 5
    assert all(torch.isfinite(b).all() for b in classifier.buffers())


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_non_finite_gradients_never_reach_the_weights(tmp_path, policy):
    """A finite loss with non-finite gradients (as bf16 on a CPU gave SlowFast's slow pathway)."""
    classifier = model(on_nonfinite_loss=policy)
    weight = classifier.model.head.weight
    weight.register_hook(lambda grad: grad * float("nan") if classifier.global_step == 1 else grad)
    fitted = trainer(tmp_path, 4)
    if policy == "raise":
        with pytest.raises(NonFiniteLossError, match=r"non-finite gradients at epoch 0, step 1 in \['model\.backbone"):
            fitted.fit(classifier, DataLoader(batches(4), batch_size=None))
    else:
        with pytest.warns(UserWarning, match="non-finite gradients .* step skipped"):
            fitted.fit(classifier, DataLoader(batches(4), batch_size=None))
        assert classifier.guard.skipped == 1
    assert finite(classifier)


def test_no_checkpoint_holds_non_finite_weights(tmp_path):
    classifier = model()
    fitted = trainer(tmp_path, 1)
    fitted.fit(classifier, DataLoader(batches(1), batch_size=None))
    with torch.no_grad():
        next(classifier.parameters())[0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="refusing to save a checkpoint with non-finite weights"):
        fitted.save_checkpoint(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()


def test_an_exploding_loss_is_warned_about(tmp_path):
    classifier = model(optimizer=lambda params: torch.optim.SGD(params, lr=30.0))
    with pytest.warns(UserWarning, match="is the learning rate too high"):
        trainer(tmp_path, 8).fit(classifier, DataLoader(batches(8, scale=3.0), batch_size=None))
