"""Backbones: any ``nn.Module`` mapping ``B x C x T x H x W`` to logits, built with the number of classes."""

from vmp_lightning.backbones.slowfast import SlowFast
from vmp_lightning.backbones.small import X3D, TinyVideoCNN

__all__ = ["X3D", "SlowFast", "TinyVideoCNN"]
