"""`vmp-lightning download`: the pretrained checkpoints a manifest names, fetched into CKPT_ROOT and verified.

The model zoos publish no hashes, so the first fetch of a file records its SHA-256 in ``checkpoints.sha256`` beside
the manifest (``sha256sum -c`` reads it) and every later fetch must match it. A download goes to ``<file>.part``,
continues from where it stopped (HTTP Range) across retries and runs, and becomes the file only once complete,
checked (an HTML page or a truncated file is refused by name) and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vmp_lightning.errors import UserError
from vmp_lightning.files import write_text
from vmp_lightning.harness.manifest import Manifest

LOCK_NAME = "checkpoints.sha256"
#: How a checkpoint file starts: a torch zip archive, or a pickle (PySlowFast's Caffe2 .pkl, old torch saves).
CHECKPOINT_SIGNATURES = (b"PK\x03\x04", b"\x80")
CHUNK = 1 << 20


class DownloadError(UserError):
    """A checkpoint could not be fetched or is not what the lock file recorded; the message names the file."""


@dataclass(frozen=True)
class Wanted:
    name: str  # the file name under CKPT_ROOT, as the manifest's ``checkpoint:``
    url: str


def wanted_checkpoints(manifest: Manifest, mirror: str | None = None) -> list[Wanted]:
    """Every checkpoint the manifest's runs name, once, with its URL (``mirror``: the file under that base URL)."""
    found: dict[str, Wanted] = {}
    for run in manifest.runs:
        if not run.checkpoint or run.checkpoint in found:
            continue
        url = f"{mirror.rstrip('/')}/{run.checkpoint}" if mirror else run.checkpoint_source
        if not url or not url.startswith(("http://", "https://", "file://")):
            raise DownloadError(f"{run.checkpoint}: the manifest gives no file URL (checkpoint_source: {url!r})")
        found[run.checkpoint] = Wanted(run.checkpoint, url)
    return list(found.values())


def read_lock(path: Path) -> dict[str, str]:
    """``sha256sum`` lines ``<hash>  <name>`` -> {name: hash}."""
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


def write_lock(path: Path, hashes: dict[str, str]) -> None:
    write_text(path, "".join(f"{hashes[name]}  {name}\n" for name in sorted(hashes)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, part: Path, retries: int = 5, progress: bool = True, timeout: float = 60) -> None:
    """``url`` into ``part``, continuing what ``part`` holds; retried with back-off on dropped connections and
    server errors. A response whose length falls short of what the server announced is retried from where it
    stopped, and refused when the retries run out."""
    from tqdm import tqdm

    for attempt in range(retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if have and response.status != 206:  # the server ignores Range: start again
                    have = 0
                if "text/html" in (response.headers.get("Content-Type") or ""):
                    raise DownloadError(f"{url}: the server sent an HTML page, not a checkpoint (an error page?)")
                length = response.headers.get("Content-Length")
                total = have + int(length) if length is not None else None
                with (
                    part.open("ab" if have else "wb") as out,
                    tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, desc=part.stem, disable=not progress
                    ) as bar,
                ):
                    while block := response.read(CHUNK):
                        out.write(block)
                        bar.update(len(block))
            if total is None or part.stat().st_size == total:
                return
            reason = f"got {part.stat().st_size} of {total} bytes"
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:  # asked past the end: the part file is complete or stale
                part.unlink()
                reason = "the partial file did not fit the server's"
            elif error.code < 500 and error.code != 429:
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
            else:
                reason = f"HTTP {error.code}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            reason = str(getattr(error, "reason", error)) or type(error).__name__
        if attempt < retries:
            time.sleep(min(2**attempt, 30) * 0.5)
    raise DownloadError(f"{url}: incomplete after {retries + 1} tries ({reason}); run again to continue")


def refuse_non_checkpoint(path: Path, url: str) -> None:
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        raise DownloadError(f"{url}: the server sent an HTML page, not a checkpoint (an error or login page?)")
    if not head.startswith(CHECKPOINT_SIGNATURES):
        raise DownloadError(f"{url}: not a checkpoint (neither a torch zip archive nor a pickle): {head[:16]!r}")


def download_checkpoints(
    manifest: Manifest,
    manifest_path: Path,
    to: Path,
    mirror: str | None = None,
    retries: int = 5,
    progress: bool = True,
) -> list[str]:
    """Fetch and verify every checkpoint of ``manifest`` into ``to``; one line per file of what was done."""
    to.mkdir(parents=True, exist_ok=True)
    lock = manifest_path.parent / LOCK_NAME
    hashes = read_lock(lock)
    said = []
    for wanted in wanted_checkpoints(manifest, mirror):
        target = to / wanted.name
        part = target.with_name(target.name + ".part")
        if target.is_file():
            digest, action = sha256(target), "already there"
        else:
            fetch(wanted.url, part, retries, progress)
            refuse_non_checkpoint(part, wanted.url)
            digest, action = sha256(part), "downloaded"
        recorded = hashes.get(wanted.name)
        if recorded is not None and recorded != digest:
            if action == "downloaded":
                part.unlink()
            what = f"{wanted.url} gave a file with" if action == "downloaded" else f"{target} has"
            raise DownloadError(
                f"{what} SHA-256 {digest}, but {lock} records {recorded} for {wanted.name}: refused (if the model "
                "zoo changed the file, delete its line in the lock file)"
            )
        if action == "downloaded":
            part.replace(target)
        if recorded is None:
            hashes[wanted.name] = digest
            write_lock(lock, hashes)
            action += f", SHA-256 recorded in {lock}"
        else:
            action += ", SHA-256 verified"
        said.append(f"{wanted.name}: {action}")
    return said
