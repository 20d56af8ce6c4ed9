"""Writing files that readers rely on: the one atomic writer of the project (standard library only)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

#: ``.<name>.<host>-<pid>-<random>.partial<suffix>``: whose temporary file it is, so a dead writer's can be removed.
PARTIAL_MARK = ".partial"


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` (the same folder, so the same filesystem), unique to this writer; when the
    block succeeds the file is flushed to disk (fsync), moved onto ``path`` and the move made durable (fsync of the
    folder); when it fails it is removed. Readers never see half a file, a crash leaves the previous file whole,
    and concurrent writers never share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix stays last: it picks a container (mp4, avi) or a format (npz) for the writer
    writer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    partial = path.with_name(f".{path.stem}.{writer}{PARTIAL_MARK}{path.suffix}")
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


def not_a_file(path: str | Path) -> str:
    """What a path that should name a regular file is instead: ``not on disk``, ``a folder``, ``a symlink loop``,
    ``a broken symlink`` or ``not a regular file (FIFO, device, socket)``."""
    path = Path(path)
    try:
        path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop"
        return "a broken symlink" if path.is_symlink() else "not on disk"
    return "a folder" if path.is_dir() else "not a regular file (FIFO, device, socket)"


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Remove the temporary files that writers on this host left in ``folder`` when they were killed (their
    process is gone); another host's, or a live writer's, stay. Returns what was removed."""
    removed = []
    ours = re.compile(re.escape(f".{socket.gethostname()}-") + r"(?P<pid>\d+)-[0-9a-f]{8}" + re.escape(PARTIAL_MARK))
    for path in Path(folder).glob(f".*{PARTIAL_MARK}*"):
        writer = ours.search(path.name)
        if writer and not process_alive(int(writer["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True
