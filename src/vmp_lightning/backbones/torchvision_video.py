"""Any torchvision video classifier as a backbone: the example of plugging in a model this project did not write."""

from __future__ import annotations

from torch import Tensor, nn


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
