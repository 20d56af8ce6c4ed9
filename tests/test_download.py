"""`vmp-lightning download` (harness/download.py) against an HTTP server on 127.0.0.1 that the tests start: resumed
after a dropped connection, retried, hashes recorded then verified, HTML pages and truncated files refused."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from vmp_lightning.commands import main
from vmp_lightning.harness.download import LOCK_NAME, DownloadError, download_checkpoints, read_lock
from vmp_lightning.harness.manifest import load_manifest


class Zoo(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes) with Range support; ``behaviour`` (name -> list of what the next requests
    get: "drop" = half the bytes then a closed connection, "html" = an error page, "short" = a Content-Length
    above what is sent) changes the next requests; every request's Range header is logged."""

    files: ClassVar[dict[str, bytes]] = {}
    behaviour: ClassVar[dict[str, list[str]]] = {}
    log: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.log.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        what = self.behaviour.get(name, [])
        what = what.pop(0) if what else "ok"
        if what == "html":
            page = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        body, start = self.files[name], 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if what in ("drop", "short"):
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def zoo(tmp_path):
    """A server holding two checkpoints and a manifest naming them with its URLs."""
    files = {}
    for name, size in (("a.pyth", 300_000), ("b.pkl", 50_000)):
        path = tmp_path / name
        torch.save({"weights": torch.arange(size // 4, dtype=torch.float32)}, path)
        files[name] = path.read_bytes()
        path.unlink()
    Zoo.files, Zoo.behaviour, Zoo.log = files, {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Zoo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/zoo"
    manifest = tmp_path / "experiments" / "table.yaml"
    manifest.parent.mkdir()
    manifest.write_text(
        f"""name: table
datasets:
  d: {{configs: [], root: d}}
models:
  first: {{configs: [], checkpoint: a.pyth, checkpoint_source: {base}/a.pyth}}
  second: {{configs: [], checkpoint: b.pkl, checkpoint_source: {base}/b.pkl}}
  again: {{configs: [], checkpoint: a.pyth, checkpoint_source: {base}/a.pyth}}
columns:
  - {{title: top-1, dataset: d, metric: acc1}}
"""
    )
    yield manifest, base, files
    server.shutdown()


def fetch_all(manifest: Path, to: Path, **options) -> list[str]:
    return download_checkpoints(load_manifest(manifest), manifest, to, progress=False, **options)


def test_first_fetch_records_the_hashes_and_later_fetches_verify_them(zoo, tmp_path):
    manifest, _, files = zoo
    said = fetch_all(manifest, tmp_path / "ckpt")
    assert [line.split(":")[0] for line in said] == ["a.pyth", "b.pkl"]  # each file once
    assert all("downloaded, SHA-256 recorded" in line for line in said)
    for name, data in files.items():
        assert (tmp_path / "ckpt" / name).read_bytes() == data
    lock = read_lock(manifest.parent / LOCK_NAME)
    assert lock == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert all("already there, SHA-256 verified" in line for line in fetch_all(manifest, tmp_path / "ckpt"))
    assert all("downloaded, SHA-256 verified" in line for line in fetch_all(manifest, tmp_path / "again"))


def test_a_dropped_connection_is_retried_and_the_download_continues_where_it_stopped(zoo, tmp_path):
    manifest, _, files = zoo
    Zoo.behaviour = {"a.pyth": ["drop", "drop"]}
    fetch_all(manifest, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "a.pyth").read_bytes() == files["a.pyth"]
    ranges = [r for name, r in Zoo.log if name == "a.pyth"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(files['a.pyth']) // 2}-" and len(ranges) == 3
    assert not list((tmp_path / "ckpt").glob("*.part"))


def test_an_interrupted_run_is_continued_by_the_next_one(zoo, tmp_path):
    manifest, _, files = zoo
    Zoo.behaviour = {"a.pyth": ["short", "short"]}
    with pytest.raises(DownloadError, match=r"a\.pyth: incomplete after 2 tries .*run again to continue"):
        fetch_all(manifest, tmp_path / "ckpt", retries=1)
    part = tmp_path / "ckpt" / "a.pyth.part"
    assert part.is_file() and not (tmp_path / "ckpt" / "a.pyth").exists()
    done = part.stat().st_size
    fetch_all(manifest, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "a.pyth").read_bytes() == files["a.pyth"]
    assert ("a.pyth", f"bytes={done}-") in Zoo.log


def test_a_file_that_differs_from_the_recorded_hash_is_refused_naming_both(zoo, tmp_path):
    manifest, _, files = zoo
    fetch_all(manifest, tmp_path / "ckpt")
    recorded = read_lock(manifest.parent / LOCK_NAME)["b.pkl"]
    changed = bytearray(files["b.pkl"])
    changed[1000] ^= 0xFF
    Zoo.files = {**files, "b.pkl": bytes(changed)}  # the zoo's file changed
    with pytest.raises(DownloadError) as error:
        fetch_all(manifest, tmp_path / "other")
    digest = hashlib.sha256(Zoo.files["b.pkl"]).hexdigest()
    assert recorded in str(error.value) and digest in str(error.value) and "refused" in str(error.value)
    assert not (tmp_path / "other" / "b.pkl").exists() and not (tmp_path / "other" / "b.pkl.part").exists()


def test_an_html_error_page_is_refused_by_name(zoo, tmp_path, capsys):
    manifest, base, _ = zoo
    Zoo.behaviour = {"a.pyth": ["html"]}
    with pytest.raises(SystemExit) as stop:
        main(["download", str(manifest), "--to", str(tmp_path / "ckpt")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"{base}/a.pyth: the server sent an HTML page" in err and "Traceback" not in err
    assert not (tmp_path / "ckpt" / "a.pyth").exists()


def test_a_mirror_serves_the_same_files(zoo, tmp_path, capsys):
    manifest, base, files = zoo
    main(["download", str(manifest), "--to", str(tmp_path / "ckpt"), "--mirror", base.replace("/zoo", "/mirror")])
    assert "b.pkl: downloaded" in capsys.readouterr().out
    assert (tmp_path / "ckpt" / "b.pkl").read_bytes() == files["b.pkl"]
    assert all(name in files for name, _ in Zoo.log)
