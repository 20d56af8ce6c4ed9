"""Packages that export names from their submodules import each one on first use, so that importing a light part
of a package (a decoder, a reader, an error) does not load the heavy ones (Lightning, torch, matplotlib); optional
dependencies (the install extras) imported where they are needed, or named in one line."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each name to its submodule (relative to the package,
    or absolute when it starts with ``vmp_lightning.``)."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = where[name] if where[name].startswith("vmp_lightning.") else f"{package}.{where[name]}"
        return getattr(import_module(module), name)

    return __getattr__


def import_optional(module: str, extra: str, needed_for: str) -> Any:
    """``import module``, or a `UserError` saying which extra of vmp-lightning installs it."""
    from vmp_lightning.errors import UserError

    try:
        return import_module(module)
    except ImportError:
        raise UserError(f"{needed_for} needs {module.split('.')[0]}: pip install 'vmp-lightning[{extra}]'") from None
