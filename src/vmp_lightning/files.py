"""Writing files that readers rely on: the one atomic writer of the project (standard library only)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` (the same folder, so the same filesystem), unique to this writer; when the
    block succeeds the file is flushed to disk (fsync), moved onto ``path`` and the move made durable (fsync of the
    folder); when it fails it is removed. Readers never see half a file, a crash leaves the previous file whole,
    and concurrent writers never share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix stays last: it picks a container (mp4, avi) or a format (npz) for the writer
    partial = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.partial{path.suffix}")
    try:
        yield partial
        _fsync(partial)
        os.replace(partial, path)
        _fsync(path.parent)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """``text`` into ``path`` atomically (`atomic_write`)."""
    with atomic_write(path) as partial:
        partial.write_text(text)
    return Path(path)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
