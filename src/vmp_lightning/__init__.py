"""vmp-lightning: Video Motion Prompts for any action-recognition backbone, on PyTorch Lightning."""

__version__ = "0.4.1"
