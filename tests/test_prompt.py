"""The motion prompt layer, the PN functions and V against direct re-computations of the spec's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import (
    AsinhE,
    Gamma,
    LearnableSigmoid,
    MaxExp,
    MotionPrompt,
    SigmE,
    temporal_variation,
)

MEAN, STD = (0.43, 0.45, 0.40), (0.23, 0.22, 0.25)
NORM = Normalization(MEAN, STD)


def reference_prompt(x, mean, std, order, m, n, alpha=5.0, beta=0.45, eps=0.1, gamma=0.6):
    """Spec section 1, step by step and deliberately naive (float64 loops over channels and frames)."""
    x = x.double()
    mean_t = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1, 1)
    u = x * std_t + mean_t
    rgb = {"R": 0.299, "G": 0.587, "B": 0.114}
    weights = [rgb[c] for c in ("RGB" if order == "rgb" else "BGR")]
    luma = sum(weights[c] * u[:, c] for c in range(3))
    a = alpha / (beta * abs(math.tanh(m)) + eps)
    b = gamma * math.tanh(n)
    maps, prompts = [], []
    for t in range(x.shape[2] - 1):
        diff = luma[:, t + 1] - luma[:, t]
        att = 1 / (1 + torch.exp(-a * (diff - b)))
        maps.append(att)
        prompts.append(att.unsqueeze(1) * x[:, :, t + 1])
    return torch.stack(prompts, 2), torch.stack(maps, 1)


@pytest.mark.parametrize("order", ["rgb", "bgr"])
@pytest.mark.parametrize(("m", "n"), [(0.3, -0.2), (1.05, -2.67), (-0.7, 0.9)])
def test_layer_matches_spec_formula_fp32(order, m, n):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 12, 10)
    pn = LearnableSigmoid(init_m=m, init_n=n)
    layer = MotionPrompt(Normalization(MEAN, STD), pn, reference_luma=order == "bgr")
    prompts, attention = layer(x)
    want_prompts, want_attention = reference_prompt(x, MEAN, STD, order, m, n)
    assert prompts.shape == (2, 3, 5, 12, 10) and attention.shape == (2, 5, 12, 10)
    assert prompts.dtype == torch.float32 and attention.dtype == torch.float32
    torch.testing.assert_close(attention.double(), want_attention, atol=1e-6, rtol=0)
    torch.testing.assert_close(prompts.double(), want_prompts, atol=1e-6, rtol=0)


def test_the_luma_order_changes_the_result():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 4, 8, 8)
    pn = dict(init_m=0.5, init_n=0.1)
    rgb = MotionPrompt(Normalization(MEAN, STD), LearnableSigmoid(**pn)).attention(x)
    bgr = MotionPrompt(Normalization(MEAN, STD), LearnableSigmoid(**pn), reference_luma=True).attention(x)
    assert (rgb - bgr).abs().max() > 1e-3


def test_mean_std_enter_as_the_spec_says():
    """std scales the difference; mean cancels in it. Changing std must change the maps."""
    torch.manual_seed(2)
    x = torch.randn(1, 3, 4, 8, 8)
    pn = dict(init_m=0.2, init_n=0.0)
    base = MotionPrompt(NORM, pn=LearnableSigmoid(**pn)).attention(x)
    other_mean = MotionPrompt(Normalization((0.1, 0.2, 0.3), STD), pn=LearnableSigmoid(**pn)).attention(x)
    other_std = MotionPrompt(Normalization(MEAN, (0.5, 0.5, 0.5)), pn=LearnableSigmoid(**pn)).attention(x)
    torch.testing.assert_close(base, other_mean)
    assert (base - other_std).abs().max() > 1e-3


def test_sigmoid_slope_and_shift_ranges_and_properties():
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.0, init_n=0.0))
    assert layer.a.item() == pytest.approx(50.0) and layer.b.item() == pytest.approx(0.0)
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=50.0, init_n=50.0))
    assert layer.a.item() == pytest.approx(5 / 0.55) and layer.b.item() == pytest.approx(0.6)
    values = layer.log_values()
    assert set(values) == {"a", "b", "m", "n"} and values["m"] == pytest.approx(50.0)


def test_default_init_draws_m_n_from_normal_and_is_seeded():
    torch.manual_seed(123)
    first = LearnableSigmoid()
    torch.manual_seed(123)
    second = LearnableSigmoid()
    assert first.m.item() == second.m.item() and first.n.item() == second.n.item()
    torch.manual_seed(0)
    draws = torch.tensor([LearnableSigmoid().m.item() for _ in range(400)])
    assert abs(draws.mean().item()) < 0.2 and 0.8 < draws.std().item() < 1.2
    assert [name for name, _ in first.named_parameters()] == ["m", "n"]


def test_fixed_sigmoid_has_no_parameters():
    pn = LearnableSigmoid(init_m=1.0, init_n=0.0, learnable=False)
    assert list(pn.parameters()) == [] and pn.m.item() == 1.0 and "m" in pn.state_dict()


def test_gradcheck_input_m_n_float64():
    torch.manual_seed(3)
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.4, init_n=0.1)).double()
    x = (0.3 * torch.randn(1, 3, 4, 5, 5, dtype=torch.float64)).requires_grad_()

    m = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    n = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)

    def fn_params(x, m, n):
        pn = layer.pn
        a = pn.alpha / (pn.beta * torch.tanh(m).abs() + pn.eps)
        b = pn.gamma * torch.tanh(n)
        w = layer._luma_of_normalised.double()
        luma = w[0] * x[:, 0] + w[1] * x[:, 1] + w[2] * x[:, 2]
        att = torch.sigmoid(a * (luma[:, 1:] - luma[:, :-1] - b))
        return att.unsqueeze(1) * x[:, :, 1:]

    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,))
    assert torch.autograd.gradcheck(fn_params, (x, m, n))
    # The layer's own gradients for m and n equal those of the formula above.
    x2 = x.detach()
    layer.zero_grad()
    layer(x2)[0].sum().backward()
    fn_params(x2, m, n).sum().backward()
    torch.testing.assert_close(layer.pn.m.grad, m.grad)
    torch.testing.assert_close(layer.pn.n.grad, n.grad)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 4, 8, 8), "5 dims"),
        ((1, 1, 4, 8, 8), "3 colour channels"),
        ((1, 4, 4, 8, 8), "3 colour channels"),
        ((1, 3, 1, 8, 8), "at least 2 frames"),
    ],
)
def test_bad_clips_raise_clear_errors(shape, message):
    layer = MotionPrompt(NORM)
    with pytest.raises(ValueError, match=message):
        layer(torch.zeros(shape))


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="mean needs one value per colour channel"):
        Normalization((0.5, 0.5), STD)
    with pytest.raises(ValueError, match="std needs one value per colour channel"):
        Normalization(MEAN, (0.2,) * 4)
    with pytest.raises(ValueError, match="std must be positive"):
        Normalization(MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="channel_order: every decoder gives RGB"):
        Normalization.of({"mean": MEAN, "std": STD, "channel_order": "bgr"})
    assert Normalization.of({"mean": MEAN, "std": STD, "channel_order": "rgb"}) == Normalization(MEAN, STD)
    with pytest.raises(ValueError, match="floating-point"):
        MotionPrompt(NORM)(torch.zeros(1, 3, 3, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_maps_fp32_and_prompts_in_input_dtype(dtype):
    torch.manual_seed(4)
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.5, init_n=0.05))
    x = torch.randn(2, 3, 5, 16, 16)
    want_prompts, want_attention = layer(x)
    with torch.autocast("cpu", dtype=dtype):
        prompts, attention = layer(x)
        variation = temporal_variation(attention)
    assert attention.dtype == torch.float32 and prompts.dtype == torch.float32 and variation.dtype == torch.float32
    torch.testing.assert_close(attention, want_attention, atol=1e-6, rtol=0)  # fp32 inside autocast
    # A low-precision clip (as after a low-precision stem) gives low-precision prompts within that dtype's tolerance.
    prompts_low, attention_low = layer(x.to(dtype))
    assert prompts_low.dtype == dtype and attention_low.dtype == torch.float32
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(prompts_low.float(), want_prompts, atol=tol * 4, rtol=tol)


def test_map_is_broadcast_not_copied_over_channels():
    x = torch.randn(1, 3, 3, 4, 4)
    layer = MotionPrompt(NORM)
    prompts, attention = layer(x)
    for c in range(3):
        torch.testing.assert_close(prompts[:, c], attention * x[:, c, 1:])


# --- PN baselines ---------------------------------------------------------------------------------------------
D = torch.linspace(-1, 1, 41)


@pytest.mark.parametrize(
    ("pn", "curve"),
    [
        (Gamma(gamma=0.5), lambda p: p**0.5),
        (MaxExp(eta=10.0), lambda p: 1 - (1 - p) ** 10),
        (SigmE(eta=20.0), lambda p: 2 / (1 + torch.exp(-20 * p)) - 1),
        (AsinhE(gamma=10.0), lambda p: torch.asinh(10 * p)),
    ],
)
@pytest.mark.parametrize("mode", ["abs", "relu", "signed"])
def test_pn_baselines_match_their_formulas(pn, curve, mode):
    pn.input_mode = mode
    got = pn(D.double()).float()
    if mode == "abs":
        want = curve(D.abs().double())
    elif mode == "relu":
        want = curve(D.clamp_min(0).double())
    else:
        want = torch.sign(D.double()) * curve(D.abs().double())
    torch.testing.assert_close(got, want.float(), atol=1e-6, rtol=0)


def test_learnable_baseline_parameters_get_gradients_and_no_nan_at_zero():
    pn = Gamma(gamma=0.5, learnable=True)
    out = pn(torch.tensor([0.0, 0.25, 1.0], requires_grad=True))
    out.sum().backward()
    assert torch.isfinite(pn.gamma.grad) and pn.gamma.grad != 0
    assert list(dict(MaxExp(learnable=True).named_parameters())) == ["eta"]
    assert list(MaxExp(learnable=False).parameters()) == []
    with pytest.raises(ValueError, match="input_mode"):
        SigmE(input_mode="square")


def test_layer_accepts_any_pn():
    x = torch.randn(1, 3, 3, 4, 4)
    prompts, _ = MotionPrompt(NORM, pn=AsinhE())(x)
    assert prompts.shape == (1, 3, 2, 4, 4)
    assert MotionPrompt(NORM, pn=AsinhE()).log_values() == {"gamma": 10.0}
    with pytest.raises(TypeError, match="AsinhE has no 'a'"):
        MotionPrompt(NORM, pn=AsinhE()).a  # noqa: B018


# --- V -------------------------------------------------------------------------------------------------------
def test_temporal_variation_against_direct_sum():
    torch.manual_seed(5)
    att = torch.rand(3, 5, 7, 6)
    total = 0.0
    for b in range(3):
        for t in range(4):
            total += torch.linalg.matrix_norm(att[b, t + 1] - att[b, t], ord="fro").item() ** 2
    assert temporal_variation(att, "sum").item() == pytest.approx(total, rel=1e-5)
    assert temporal_variation(att, "per_pair").item() == pytest.approx(total / (3 * 4), rel=1e-5)
    assert temporal_variation(att).item() == pytest.approx(total / (3 * 4 * 7 * 6), rel=1e-5)


def test_temporal_variation_is_zero_for_constant_maps_and_checks_input():
    assert temporal_variation(torch.full((2, 3, 4, 4), 0.7)).item() == 0.0
    with pytest.raises(ValueError, match="at least 2 attention maps"):
        temporal_variation(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="B x T x H x W"):
        temporal_variation(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="V reduction"):
        temporal_variation(torch.rand(2, 3, 4, 4), "max")


def test_the_fused_sigmoid_layer_has_the_generic_paths_values_and_an_exact_backward():
    """MotionPrompt with the learnable sigmoid runs as one autograd node (SigmoidPrompt): float64 gradcheck of both
    outputs in the clip, a and b; in float32 the same prompts and maps as the generic autograd path within 1e-6 and
    the same gradients for the clip, m and n under a loss that uses both outputs (as CE + lambda V does)."""
    from vmp_lightning.prompt.layer import SigmoidPrompt
    from vmp_lightning.prompt.regularizer import temporal_variation

    torch.manual_seed(5)
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.4, init_n=0.1)).double()
    x = (0.3 * torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)).requires_grad_()
    a = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    weights = layer._luma_of_normalised.double()
    assert torch.autograd.gradcheck(lambda x, a, b: SigmoidPrompt.apply(x, weights, a, b), (x, a, b))

    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.4, init_n=0.1))
    x = torch.randn(2, 3, 9, 32, 40)
    results = []
    for fused in (True, False):
        layer.zero_grad()
        clip = x.clone().requires_grad_()
        if fused:
            prompts, attention = layer(clip)
        else:
            attention = layer.attention(clip)  # the generic path: PN by autograd
            prompts = attention.unsqueeze(1) * clip[:, :, 1:]
        loss = (prompts * torch.linspace(-1, 1, 40)).sum() + 10 * temporal_variation(attention)
        loss.backward()
        results.append((prompts, attention, clip.grad, layer.pn.m.grad, layer.pn.n.grad))
    for fused, generic in zip(*results, strict=True):
        torch.testing.assert_close(fused, generic, atol=1e-6, rtol=1e-5)


def test_the_fused_layers_backward_leaves_the_incoming_gradient_alone():
    """Only the maps' gradient flowing (the prompts unused): the layer's backward must not change it in place."""
    layer = MotionPrompt(NORM, pn=LearnableSigmoid(init_m=0.4, init_n=0.1))
    x = torch.randn(1, 3, 4, 5, 6, requires_grad=True)
    _, attention = layer(x)
    incoming = torch.ones_like(attention)
    torch.autograd.backward([attention], [incoming])
    assert torch.equal(incoming, torch.ones_like(attention)) and x.grad.abs().sum() > 0
