"""One module per dataset: its layout check, annotation reader, preparation step and data module.

Adding a dataset = one new module here (a data module subclassing `VideoDataModule` or `AnnotatedDataModule`,
optionally a module-level ``PREPARE`` for `vmp-lightning prepare`) and one YAML under ``configs/data/``.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from vmp_lightning.data.prepare import PrepareCommand
from vmp_lightning.lazy import lazy_exports

#: What `vmp-lightning prepare` lists without importing the dataset modules (each brings Lightning with its data
#: module): command -> (module, one line of help). A test keeps it equal to the modules' ``PREPARE``.
PREPARE_INDEX = {
    "finegym": ("finegym", "cut sub-action clips from the raw videos"),
    "hmdb51": ("hmdb51", "re-encode all videos densely key-framed, rewrite the split files"),
    "mpii-cooking2": (
        "mpii_cooking2",
        "re-encode the annotated videos (smaller, short GOPs) into a root the data module reads",
    ),
}

_WHERE = {
    "FineGymDataModule": "finegym",
    "HMDB51DataModule": "hmdb51",
    "MPIICooking2DataModule": "mpii_cooking2",
    "SyntheticMotionDataModule": "synthetic",
    "VideoListDataModule": "video_list",
}


__getattr__ = lazy_exports(__name__, _WHERE)  # a data module brings Lightning: imported on first use


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
