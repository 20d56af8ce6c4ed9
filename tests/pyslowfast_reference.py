"""PySlowFast's SlowFast and X3D written out as the oracle for the checkpoint-conversion tests.

Module names, shapes and arithmetic follow facebookresearch/SlowFast (``slowfast/models/stem_helper.py``,
``resnet_helper.py``, ``head_helper.py``, ``video_model_builder.py``, ``operators.py``), so the state dicts these
modules produce have the original's key names, and their outputs are what the original computes. One difference,
on purpose: the heads return the projection (logits); the original applies a softmax on top in eval mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DEPTHS = {50: (3, 4, 6, 3)}


def bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


def round_width(width: float, multiplier: float, min_width: int = 1, divisor: int = 1) -> int:
    width *= multiplier
    min_width = min_width or divisor
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    return int(out + divisor if out < 0.9 * width else out)


class ResNetBasicStem(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, temporal: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(dim_in, dim_out, [temporal, 7, 7], [1, 2, 2], [temporal // 2, 3, 3], bias=False)
        self.bn = bn(dim_out)
        self.relu = nn.ReLU()
        self.pool_layer = nn.MaxPool3d([1, 3, 3], [1, 2, 2], [0, 1, 1])

    def forward(self, x):
        return self.pool_layer(self.relu(self.bn(self.conv(x))))


class X3DStem(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(dim_in, dim_out, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False)
        self.conv = nn.Conv3d(dim_out, dim_out, (5, 1, 1), 1, (2, 0, 0), bias=False, groups=dim_out)
        self.bn = bn(dim_out)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(self.conv_xy(x))))


class BottleneckTransform(nn.Module):
    def __init__(self, dim_in, dim_out, temporal, stride, dim_inner, block_idx) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, [temporal, 1, 1], 1, [temporal // 2, 0, 0], bias=False)
        self.a_bn, self.a_relu = bn(dim_inner), nn.ReLU()
        self.b = nn.Conv3d(dim_inner, dim_inner, [1, 3, 3], [1, stride, stride], [0, 1, 1], bias=False)
        self.b_bn, self.b_relu = bn(dim_inner), nn.ReLU()
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = bn(dim_out)

    def forward(self, x):
        x = self.a_relu(self.a_bn(self.a(x)))
        x = self.b_relu(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class SE(nn.Module):
    def __init__(self, dim_in: int, ratio: float) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        dim_fc = round_width(dim_in, ratio, min_width=8, divisor=8)
        self.fc1, self.fc1_act = nn.Conv3d(dim_in, dim_fc, 1), nn.ReLU()
        self.fc2, self.fc2_sig = nn.Conv3d(dim_fc, dim_in, 1), nn.Sigmoid()

    def forward(self, x):
        scale = x
        for module in self.children():
            scale = module(scale)
        return x * scale


class X3DTransform(nn.Module):
    """Children run in registration order: a, a_bn, a_relu, b, b_bn, (se), b_relu, c, c_bn."""

    def __init__(self, dim_in, dim_out, temporal, stride, dim_inner, block_idx) -> None:
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.a_bn, self.a_relu = bn(dim_inner), nn.ReLU()
        self.b = nn.Conv3d(
            dim_inner, dim_inner, [temporal, 3, 3], [1, stride, stride], [temporal // 2, 1, 1], groups=dim_inner,
            bias=False,
        )  # fmt: skip
        self.b_bn = bn(dim_inner)
        if (block_idx + 1) % 2:
            self.se = SE(dim_inner, 0.0625)
        self.b_relu = Swish()
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = bn(dim_out)

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x


class ResBlock(nn.Module):
    def __init__(self, dim_in, dim_out, temporal, stride, transform, dim_inner, block_idx) -> None:
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.branch1 = nn.Conv3d(dim_in, dim_out, 1, [1, stride, stride], bias=False)
            self.branch1_bn = bn(dim_out)
        self.branch2 = transform(dim_in, dim_out, temporal, stride, dim_inner, block_idx)
        self.relu = nn.ReLU()

    def forward(self, x):
        f_x = self.branch2(x)
        x = self.branch1_bn(self.branch1(x)) + f_x if hasattr(self, "branch1") else x + f_x
        return self.relu(x)


class ResStage(nn.Module):
    """One stage, one list of blocks per pathway: ``pathway{p}_res{i}``."""

    def __init__(self, dims_in, dims_out, dims_inner, temporals, stride, blocks, transform) -> None:
        super().__init__()
        self.blocks = blocks
        for p, (dim_in, dim_out, dim_inner, temporal) in enumerate(
            zip(dims_in, dims_out, dims_inner, temporals, strict=True)
        ):
            for i in range(blocks):
                block = ResBlock(
                    dim_in if i == 0 else dim_out, dim_out, temporal, stride if i == 0 else 1, transform, dim_inner, i
                )
                self.add_module(f"pathway{p}_res{i}", block)
        self.pathways = len(dims_in)

    def forward(self, inputs):
        outputs = []
        for p in range(self.pathways):
            x = inputs[p]
            for i in range(self.blocks):
                x = getattr(self, f"pathway{p}_res{i}")(x)
            outputs.append(x)
        return outputs


class FuseFastToSlow(nn.Module):
    def __init__(self, dim_in: int, ratio: int, kernel: int, alpha: int) -> None:
        super().__init__()
        self.conv_f2s = nn.Conv3d(
            dim_in, dim_in * ratio, [kernel, 1, 1], [alpha, 1, 1], [kernel // 2, 0, 0], bias=False
        )
        self.bn = bn(dim_in * ratio)
        self.relu = nn.ReLU()

    def forward(self, x):
        return [torch.cat([x[0], self.relu(self.bn(self.conv_f2s(x[1])))], 1), x[1]]


class SlowFast(nn.Module):
    """SLOWFAST_8x8_R50: ``slowfast`` temporal kernels, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, kernel 7."""

    def __init__(self, num_classes: int, width: int = 64, alpha: int = 4, beta_inv: int = 8, depth: int = 50):
        super().__init__()
        ratio, kernel = 2, 7
        fused = width + width // (beta_inv // ratio)  # slow channels after a fusion, per unit of width
        slow_t, fast_t = [1, 1, 1, 3, 3], [5, 3, 3, 3, 3]
        self.s1 = nn.Module()
        self.s1.pathway0_stem = ResNetBasicStem(3, width, slow_t[0])
        self.s1.pathway1_stem = ResNetBasicStem(3, width // beta_inv, fast_t[0])
        self.s1_fuse = FuseFastToSlow(width // beta_inv, ratio, kernel, alpha)
        dims_in = [fused, width // beta_inv]
        for stage, blocks in enumerate(DEPTHS[depth], start=2):
            scale = 4 * 2 ** (stage - 2)
            out = [width * scale, width * scale // beta_inv]
            inner = [width * scale // 4, width * scale // 4 // beta_inv]
            stride = 1 if stage == 2 else 2
            temporals = [slow_t[stage - 1], fast_t[stage - 1]]
            self.add_module(f"s{stage}", ResStage(dims_in, out, inner, temporals, stride, blocks, BottleneckTransform))
            if stage < 5:
                self.add_module(f"s{stage}_fuse", FuseFastToSlow(out[1], ratio, kernel, alpha))
            dims_in = [out[0] + out[0] // (beta_inv // ratio), out[1]]
        self.head = nn.Module()
        self.head.pathway0_avgpool = nn.AdaptiveAvgPool3d(1)
        self.head.pathway1_avgpool = nn.AdaptiveAvgPool3d(1)
        self.head.projection = nn.Linear(out[0] + out[1], num_classes)

    def forward(self, x):
        x = self.s1_fuse([self.s1.pathway0_stem(x[0]), self.s1.pathway1_stem(x[1])])
        x = self.s2_fuse(self.s2(x))  # pathway pools are 1x1x1 for SlowFast: identity
        x = self.s4_fuse(self.s4(self.s3_fuse(self.s3(x))))
        x = self.s5(x)
        pooled = torch.cat([self.head.pathway0_avgpool(x[0]), self.head.pathway1_avgpool(x[1])], 1)
        return self.head.projection(pooled.permute(0, 2, 3, 4, 1)).flatten(1)


class X3D(nn.Module):
    """X3D with PySlowFast's defaults (DIM_C1 12, BOTTLENECK_FACTOR 2.25, DIM_C5 2048, SE ratio 1/16)."""

    def __init__(self, num_classes: int, width_factor: float = 2.0, depth_factor: float = 2.2) -> None:
        super().__init__()
        dim_c1 = 12
        dim_in = round_width(dim_c1, width_factor)
        self.s1 = nn.Module()
        self.s1.pathway0_stem = X3DStem(3, dim_in)
        stage_dims = [dim_c1]
        for _ in range(3):
            stage_dims.append(round_width(stage_dims[-1], 2.0, divisor=8))
        for stage, (blocks, dim) in enumerate(zip((1, 2, 5, 3), stage_dims, strict=True), start=2):
            dim_out = round_width(dim, width_factor)
            dim_inner = int(2.25 * dim_out)
            repeats = math.ceil(depth_factor * blocks)
            self.add_module(f"s{stage}", ResStage([dim_in], [dim_out], [dim_inner], [3], 2, repeats, X3DTransform))
            dim_in = dim_out
        self.head = nn.Module()
        self.head.conv_5 = nn.Conv3d(dim_out, dim_inner, 1, bias=False)
        self.head.conv_5_bn = bn(dim_inner)
        self.head.lin_5 = nn.Conv3d(dim_inner, 2048, 1, bias=False)
        self.head.projection = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = [self.s1.pathway0_stem(x)]
        for stage in (self.s2, self.s3, self.s4, self.s5):
            x = stage(x)
        x = torch.relu(self.head.conv_5_bn(self.head.conv_5(x[0])))
        x = torch.relu(self.head.lin_5(x.mean((2, 3, 4), keepdim=True)))
        return self.head.projection(x.permute(0, 2, 3, 4, 1)).flatten(1)


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BatchNorm statistics far from their initial values (so a wrongly mapped key shows), scaled by
    fan-in so that activations stay finite through 50 layers; returned in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if name.endswith(("running_var", "bn.weight")):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
            else:
                fan_in = value[0].numel() if value.dim() > 1 else 10
                value.copy_(torch.randn(value.shape, generator=generator) / math.sqrt(fan_in))
    return model.eval()
