"""The motion prompt layer, its PN functions and the temporal variation regulariser (pure torch)."""

from vmp_lightning.prompt.layer import BT601_RGB, MotionPrompt, check_clip, luma_weights
from vmp_lightning.prompt.pn import AsinhE, Gamma, LearnableSigmoid, MaxExp, PowerNorm, SigmE
from vmp_lightning.prompt.regularizer import VReduction, temporal_variation

__all__ = [
    "BT601_RGB",
    "AsinhE",
    "Gamma",
    "LearnableSigmoid",
    "MaxExp",
    "MotionPrompt",
    "PowerNorm",
    "SigmE",
    "VReduction",
    "check_clip",
    "luma_weights",
    "temporal_variation",
]
