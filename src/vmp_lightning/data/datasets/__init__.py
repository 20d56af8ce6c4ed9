"""One module per dataset: its layout check, annotation reader, preparation step and data module.

Adding a dataset = one new module here (a data module subclassing `VideoDataModule` or `AnnotatedDataModule`,
optionally a module-level ``PREPARE`` for `vmp-lightning prepare`) and one YAML under ``configs/data/``.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from vmp_lightning.data.datasets.finegym import FineGymDataModule
from vmp_lightning.data.datasets.hmdb51 import HMDB51DataModule
from vmp_lightning.data.datasets.mpii_cooking2 import MPIICooking2DataModule
from vmp_lightning.data.datasets.synthetic import SyntheticMotionDataModule
from vmp_lightning.data.datasets.video_list import VideoListDataModule
from vmp_lightning.data.prepare import PrepareCommand


def prepare_commands() -> dict[str, PrepareCommand]:
    """The ``PREPARE`` of every dataset module in this package, by command name."""
    commands = {}
    for info in pkgutil.iter_modules(__path__):
        command = getattr(import_module(f"{__name__}.{info.name}"), "PREPARE", None)
        if isinstance(command, PrepareCommand):
            commands[command.name] = command
    return dict(sorted(commands.items()))


__all__ = [
    "FineGymDataModule",
    "HMDB51DataModule",
    "MPIICooking2DataModule",
    "SyntheticMotionDataModule",
    "VideoListDataModule",
    "prepare_commands",
]
