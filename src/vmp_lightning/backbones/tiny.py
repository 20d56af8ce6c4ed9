"""A tiny 3D CNN: fast enough for CPU tests, the demo and quick experiments."""

from __future__ import annotations

from torch import Tensor, nn


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
