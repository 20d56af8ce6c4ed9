"""A bare GPU machine's packages, for running a script as it would run there: a folder of links to this
environment's copies of torch, lightning, timm, torchmetrics, einops and what they require, and nothing else.
Run with ``python -S`` (no site-packages) and that folder on PYTHONPATH."""

from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

from packaging.requirements import Requirement

GPU_MACHINE = ("torch", "lightning", "timm", "torchmetrics", "einops")


def requirement_closure(names: tuple[str, ...]) -> set[str]:
    """The distributions ``names`` pull in (their unconditional requirements, recursively)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r.name for r in map(Requirement, requires) if not r.marker or r.marker.evaluate({"extra": ""})]
    return seen


def gpu_machine_site(folder: Path) -> Path:
    """Links to the top-level entries (packages, modules, .dist-info) of the GPU machine's distributions."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in requirement_closure(GPU_MACHINE):
        dist = metadata.distribution(name)
        for file in dist.files or []:
            top = file.parts[0]
            if top != ".." and not (folder / top).exists():
                (folder / top).symlink_to(Path(dist.locate_file(top)))
    return folder
