"""Where `VideoClassifier` lived before 0.3: checkpoints, configs and users' saved ``config.yaml`` files name
``vmp_lightning.module.VideoClassifier``, so the class path keeps working. New code imports `vmp_lightning.classifier`.
"""

from vmp_lightning.classifier import VideoClassifier, restoring_from_checkpoint
from vmp_lightning.nonfinite import NonFiniteLossError

__all__ = ["NonFiniteLossError", "VideoClassifier", "restoring_from_checkpoint"]
