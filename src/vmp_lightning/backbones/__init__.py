"""Backbones: any ``nn.Module`` mapping ``B x C x T x H x W`` to logits, built with the number of classes.

One file per backbone; `SlowFast` places its prompts itself (`vmp_lightning.model.PromptSites`).
"""

from vmp_lightning.backbones.slowfast import SlowFast
from vmp_lightning.backbones.timesformer import TimeSformer
from vmp_lightning.backbones.tiny import TinyVideoCNN
from vmp_lightning.backbones.torchvision_video import TorchvisionVideo
from vmp_lightning.backbones.x3d import X3D

__all__ = ["X3D", "SlowFast", "TimeSformer", "TinyVideoCNN", "TorchvisionVideo"]
