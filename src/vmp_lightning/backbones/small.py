"""Small backbones for CPU runs: X3D built by pytorchvideo (any size) and a tiny 3D CNN for tests."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

#: X3D sizes differ in input (frames x crop) and, for L, depth; the builders below take the depth from here.
X3D_DEPTH = {"xs": 2.2, "s": 2.2, "m": 2.2, "l": 5.0}


class X3D(nn.Module):
    """pytorchvideo's X3D returning logits for any clip length and crop size.

    The hub builder sizes its head pooling for one reference input and ends in a softmax; here the pooling is
    global (adaptive) and the softmax is dropped, so the loss sees logits.
    """

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

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TinyVideoCNN(nn.Module):
    """Three 3D convolutions and a linear classifier: fast enough for CPU tests and quick experiments."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.0) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm3d(cout),
                nn.ReLU(True),
            )

        self.features = nn.Sequential(
            block(3, width, (1, 2, 2)),
            block(width, 2 * width, (1, 2, 2)),
            block(2 * width, 4 * width, (2, 2, 2)),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class TorchvisionVideo(nn.Module):
    """Any torchvision video classifier by name (``r3d_18``, ``r2plus1d_18``, ``mc3_18``, ``s3d``, ``mvit_v2_s``,
    ...) with a head for ``num_classes``; an example of plugging an arbitrary model in front of which the prompt
    sits. No weights are downloaded; use ``model.init_checkpoint`` for pretrained ones."""

    def __init__(self, num_classes: int, name: str = "r3d_18") -> None:
        super().__init__()
        from torchvision.models import video

        if not callable(getattr(video, name, None)):
            raise ValueError(f"torchvision.models.video has no model {name!r}")
        self.net = getattr(video, name)(weights=None, num_classes=num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
