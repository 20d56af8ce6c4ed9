"""Backbones: any ``nn.Module`` mapping ``B x C x T x H x W`` to logits, built with the number of classes."""

from vmp_lightning.backbones.slowfast import SlowFast
from vmp_lightning.backbones.small import X3D, TinyVideoCNN, TorchvisionVideo
from vmp_lightning.backbones.timesformer import TimeSformer

__all__ = ["X3D", "SlowFast", "TimeSformer", "TinyVideoCNN", "TorchvisionVideo"]
