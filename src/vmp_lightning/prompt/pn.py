"""Power-normalisation (PN) functions: frame differences -> attention maps.

Each PN maps a signed luma difference ``D`` (``B x T x H x W``, float32, in [-1, 1]) to an attention map.
`LearnableSigmoid` is the VMP paper's function; `Gamma`, `MaxExp`, `SigmE` and `AsinhE` are the classical PN
baselines the paper compares against (Koniusz et al., CVPR 2018 / TPAMI 2021). Their parameters are not published
for this use, so they are settings here, fixed or learnable.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

InputMode = Literal["abs", "relu", "signed"]


def _scalar(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    """Register a 0-d float32 tensor as a parameter (learnable) or a buffer (fixed, still saved)."""
    tensor = torch.tensor(float(value), dtype=torch.float32)
    if learnable:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


def _safe_pow(base: Tensor, exponent: Tensor) -> Tensor:
    """``base ** exponent`` for ``base >= 0`` that is exactly 0 at 0 with finite gradients everywhere."""
    positive = base > 0
    return torch.where(positive, base.clamp_min(torch.finfo(base.dtype).tiny).pow(exponent), 0.0)


class PowerNorm(nn.Module):
    """Base class of the PN functions. Subclasses implement `forward(diff) -> attention`."""

    def log_values(self) -> dict[str, float]:
        """Scalars worth logging while training (name -> current value)."""
        return {}


class LearnableSigmoid(PowerNorm):
    """The VMP attention function ``f(D) = sigmoid(a (D - b))``.

    ``a = alpha / (beta |tanh m| + eps)`` keeps the slope in ``(alpha / (beta + eps), alpha / eps]`` and
    ``b = gamma tanh n`` keeps the shift in ``(-gamma, gamma)``; ``m`` and ``n`` are the only parameters.
    By default they are drawn from ``N(init_mean, init_std)`` as in the reference code; give ``init_m`` /
    ``init_n`` to start from fixed values (for example the published ones).
    """

    def __init__(
        self,
        alpha: float = 5.0,
        beta: float = 0.45,
        eps: float = 0.1,
        gamma: float = 0.6,
        init_m: float | None = None,
        init_n: float | None = None,
        init_mean: float = 1e-5,
        init_std: float = 1.0,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        if beta < 0 or eps <= 0:
            raise ValueError(f"LearnableSigmoid needs beta >= 0 and eps > 0, got beta={beta}, eps={eps}")
        self.alpha, self.beta, self.eps, self.gamma = alpha, beta, eps, gamma
        draw = lambda: float(torch.empty(()).normal_(init_mean, init_std))  # noqa: E731
        _scalar(self, "m", draw() if init_m is None else init_m, learnable)
        _scalar(self, "n", draw() if init_n is None else init_n, learnable)

    @property
    def a(self) -> Tensor:
        return self.alpha / (self.beta * torch.tanh(self.m).abs() + self.eps)

    @property
    def b(self) -> Tensor:
        return self.gamma * torch.tanh(self.n)

    def forward(self, diff: Tensor) -> Tensor:
        return torch.sigmoid(self.a * (diff - self.b))

    def log_values(self) -> dict[str, float]:
        return {"a": self.a.item(), "b": self.b.item(), "m": self.m.item(), "n": self.n.item()}


class _OddExtensionPN(PowerNorm):
    """A PN curve ``g(p)`` defined for ``p >= 0``, applied to ``|D|``, ``relu(D)`` or signed as ``sign(D) g(|D|)``."""

    def __init__(self, input_mode: InputMode = "abs") -> None:
        super().__init__()
        if input_mode not in ("abs", "relu", "signed"):
            raise ValueError(f"input_mode must be 'abs', 'relu' or 'signed', got {input_mode!r}")
        self.input_mode = input_mode

    def curve(self, p: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, diff: Tensor) -> Tensor:
        if self.input_mode == "abs":
            return self.curve(diff.abs())
        if self.input_mode == "relu":
            return self.curve(diff.clamp_min(0))
        return torch.sign(diff) * self.curve(diff.abs())


class Gamma(_OddExtensionPN):
    """``g(p) = p ** gamma``."""

    def __init__(self, gamma: float = 0.5, learnable: bool = False, input_mode: InputMode = "abs") -> None:
        super().__init__(input_mode)
        _scalar(self, "gamma", gamma, learnable)

    def curve(self, p: Tensor) -> Tensor:
        return _safe_pow(p, self.gamma)

    def log_values(self) -> dict[str, float]:
        return {"gamma": self.gamma.item()}


class MaxExp(_OddExtensionPN):
    """``g(p) = 1 - (1 - p) ** eta`` for ``p`` in [0, 1]."""

    def __init__(self, eta: float = 10.0, learnable: bool = False, input_mode: InputMode = "abs") -> None:
        super().__init__(input_mode)
        _scalar(self, "eta", eta, learnable)

    def curve(self, p: Tensor) -> Tensor:
        return 1 - _safe_pow((1 - p).clamp_min(0), self.eta)

    def log_values(self) -> dict[str, float]:
        return {"eta": self.eta.item()}


class SigmE(_OddExtensionPN):
    """``g(p) = 2 / (1 + exp(-eta p)) - 1``."""

    def __init__(self, eta: float = 20.0, learnable: bool = False, input_mode: InputMode = "abs") -> None:
        super().__init__(input_mode)
        _scalar(self, "eta", eta, learnable)

    def curve(self, p: Tensor) -> Tensor:
        return 2 * torch.sigmoid(self.eta * p) - 1

    def log_values(self) -> dict[str, float]:
        return {"eta": self.eta.item()}


class AsinhE(_OddExtensionPN):
    """``g(p) = asinh(gamma p)``."""

    def __init__(self, gamma: float = 10.0, learnable: bool = False, input_mode: InputMode = "abs") -> None:
        super().__init__(input_mode)
        _scalar(self, "gamma", gamma, learnable)

    def curve(self, p: Tensor) -> Tensor:
        return torch.asinh(self.gamma * p)

    def log_values(self) -> dict[str, float]:
        return {"gamma": self.gamma.item()}
