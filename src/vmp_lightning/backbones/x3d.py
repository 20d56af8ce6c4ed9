"""X3D (Feichtenhofer, CVPR 2020) built by pytorchvideo, any size, returning logits for any input size."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from vmp_lightning.backbones.pyslowfast import x3d_from_pyslowfast

#: X3D sizes differ in input (frames x crop) and, for L, depth; the builders below take the depth from here.
X3D_DEPTH = {"xs": 2.2, "s": 2.2, "m": 2.2, "l": 5.0}


class X3D(nn.Module):
    """pytorchvideo's X3D returning logits for any clip length and crop size.

    The hub builder sizes its head pooling for one reference input and ends in a softmax; here the pooling is
    global (adaptive) and the softmax is dropped, so the loss sees logits. Every strided shortcut has its
    BatchNorm, as in PySlowFast's X3D (the original; pytorchvideo leaves it out where the channels do not change,
    the first block of res2), so PySlowFast checkpoints compute exactly what they computed there.
    """

    from_original_layout = staticmethod(x3d_from_pyslowfast)

    def __init__(
        self,
        num_classes: int,
        size: Literal["xs", "s", "m", "l"] = "s",
        width_factor: float = 2.0,
        depth_factor: float | None = None,
        head_dim: int = 2048,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        from pytorchvideo.models.x3d import create_x3d

        if size not in X3D_DEPTH:
            raise ValueError(f"X3D size must be one of {sorted(X3D_DEPTH)}, got {size!r}")
        self.net = create_x3d(
            model_num_class=num_classes,
            width_factor=width_factor,
            depth_factor=X3D_DEPTH[size] if depth_factor is None else depth_factor,
            head_dim_out=head_dim,
            dropout_rate=dropout,
            head_activation=None,
            input_clip_length=4,  # placeholders: the head pool is made adaptive below
            input_crop_size=160,
        )
        self.net.blocks[-1].pool.pool = nn.AdaptiveAvgPool3d(1)
        for stage in self.net.blocks[1:-1]:
            for block in stage.res_blocks:
                if block.branch1_conv is not None and block.branch1_norm is None:
                    block.branch1_norm = nn.BatchNorm3d(block.branch1_conv.out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
