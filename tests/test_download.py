"""Downloads, mirrors, checksums and safe unzipping against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab28.data import fetch
from lab28.workloads.gsn import fetch as gsn_fetch
from lab28.data.download import download_file, md5_of, safe_extract_zip
from lab28.data.idx import write_idx
from lab28.data.specs import idx_spec
from lab28.errors import Lab28Error

HEADER = "name,squares,circles,up,right,down,left"
ROWS = ["img_0.png,4,6,0,0,0,0", "img_1.png,0,0,3,7,0,0", "img_2.png,0,2,0,0,0,8"]


class _Server:
    """A loopback file server over a temp folder that records the paths it was asked for."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path.startswith("/slow/"):
                    time.sleep(1.0)
                super().do_GET()

            def log_message(self, *args):  # keep pytest output clean
                pass

        class QuietServer(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that gave up (timeout test) is expected
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, rel: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{rel}"


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    srv = _Server(served)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(28, 28, 4), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _gsn_zip(path: Path, labels: bool = True, extra: dict[str, bytes] | None = None, skip: str = "") -> Path:
    """A miniature GSN archive in the official layout: data/labels.csv plus the PNGs it names."""
    with zipfile.ZipFile(path, "w") as zf:
        if labels:
            zf.writestr("data/labels.csv", "\n".join([HEADER, *ROWS]) + "\n")
        for i, row in enumerate(ROWS):
            name = row.split(",")[0]
            if name != skip:
                zf.writestr(f"data/{name}", _png_bytes(i))
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name exactly as given
    return path


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _no_parts(folder: Path) -> bool:
    return not list(folder.rglob("*.part"))


# --- fetch_gsn -------------------------------------------------------------------------------------------------

def test_fetch_gsn_downloads_extracts_and_is_idempotent(server, tmp_path):
    _gsn_zip(server.root / "data_gsn.zip")
    root = tmp_path / "cache"
    data = gsn_fetch.fetch_gsn(root=root, url=server.url("data_gsn.zip"), timeout=5)
    assert data == root / "gsn" / "data"
    assert (data / "labels.csv").read_text().splitlines()[0] == HEADER
    for row in ROWS:
        with Image.open(data / row.split(",")[0]) as img:
            assert img.size == (28, 28) and img.mode == "RGBA"
    assert server.requests == ["/data_gsn.zip"]
    assert not [p.name for p in (root / "gsn").iterdir() if p.name.startswith(".")]  # no staging left

    # Second call: valid copy on disk, so no request at all (even with a URL that would fail).
    assert gsn_fetch.fetch_gsn(root=root, url=_closed_port_url(), timeout=5) == data
    assert server.requests == ["/data_gsn.zip"]


def test_fetch_gsn_rebuilds_a_damaged_copy_from_the_cached_zip(server, tmp_path):
    _gsn_zip(server.root / "data_gsn.zip")
    root = tmp_path / "cache"
    data = gsn_fetch.fetch_gsn(root=root, url=server.url("data_gsn.zip"), timeout=5)
    (data / "img_1.png").unlink()
    assert gsn_fetch.fetch_gsn(root=root, url=server.url("data_gsn.zip"), timeout=5) == data
    assert (data / "img_1.png").is_file()
    assert server.requests == ["/data_gsn.zip"]  # the zip kept from the first run was reused


def test_fetch_gsn_archive_without_labels(server, tmp_path):
    _gsn_zip(server.root / "data_gsn.zip", labels=False)
    with pytest.raises(Lab28Error, match="archive has no data/labels.csv") as err:
        gsn_fetch.fetch_gsn(root=tmp_path / "cache", url=server.url("data_gsn.zip"), timeout=5)
    assert "data_gsn.zip" in str(err.value)
    assert not (tmp_path / "cache" / "gsn" / "data").exists()
    assert not (tmp_path / "cache" / "gsn" / "data_gsn.zip").exists()  # junk download is not kept


def test_fetch_gsn_archive_missing_an_image(server, tmp_path):
    _gsn_zip(server.root / "data_gsn.zip", skip="img_2.png")
    with pytest.raises(Lab28Error, match="img_2.png") as err:
        gsn_fetch.fetch_gsn(root=tmp_path / "cache", url=server.url("data_gsn.zip"), timeout=5)
    assert ".unpacked" not in str(err.value)
    assert not (tmp_path / "cache" / "gsn" / "data").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "data/../../evil.txt", "ABSOLUTE", "C:/evil.txt",
                                    "data\\..\\..\\evil.txt"])
def test_fetch_gsn_refuses_escaping_members(server, tmp_path, member):
    outside = tmp_path / "outside" / "evil.txt"
    if member == "ABSOLUTE":
        member = str(outside)
    _gsn_zip(server.root / "data_gsn.zip", extra={member: b"pwned"})
    root = tmp_path / "cache"
    with pytest.raises(Lab28Error) as err:
        gsn_fetch.fetch_gsn(root=root, url=server.url("data_gsn.zip"), timeout=5)
    assert "data_gsn.zip" in str(err.value) and repr(member) in str(err.value)
    assert not outside.exists()
    assert not [p for p in tmp_path.rglob("evil.txt")]
    assert not (root / "gsn" / "data").exists()


def test_fetch_gsn_unreachable_is_one_line_and_leaves_nothing(server, tmp_path):
    root = tmp_path / "cache"
    for url in (server.url("missing.zip"), _closed_port_url()):
        with pytest.raises(Lab28Error) as err:
            gsn_fetch.fetch_gsn(root=root, url=url, timeout=5)
        msg = str(err.value)
        assert "\n" not in msg and "data_gsn.zip" in msg and "--root/--data" in msg
        assert ("HTTP 404" in msg) if "missing" in url else ("connection refused" in msg)
        assert not (root / "gsn" / "data_gsn.zip").exists()
        assert _no_parts(tmp_path)


# --- download_file ---------------------------------------------------------------------------------------------

def test_download_mirror_fallback_on_checksum(server, tmp_path):
    (server.root / "m1").mkdir()
    (server.root / "m2").mkdir()
    (server.root / "m1" / "f.bin").write_bytes(b"wrong content")
    (server.root / "m2" / "f.bin").write_bytes(b"right content")
    good = hashlib.md5(b"right content").hexdigest()
    dest = tmp_path / "dl" / "f.bin"
    assert download_file([server.url("m1/f.bin"), server.url("m2/f.bin")], dest, md5=good, timeout=5) == dest
    assert dest.read_bytes() == b"right content" and md5_of(dest) == good
    assert server.requests == ["/m1/f.bin", "/m2/f.bin"]
    assert _no_parts(tmp_path)

    # Idempotent: present and verified, so no new request.
    download_file([server.url("m1/f.bin")], dest, md5=good, timeout=5)
    assert len(server.requests) == 2

    # A stale file with the wrong checksum is replaced.
    dest.write_bytes(b"stale")
    download_file([server.url("m2/f.bin")], dest, md5=good, timeout=5)
    assert dest.read_bytes() == b"right content"


def test_download_progress_draws_no_frames_into_a_pipe(server, tmp_path, capsys):
    (server.root / "f.bin").write_bytes(b"content")
    download_file([server.url("f.bin")], tmp_path / "f.bin", timeout=5, progress=True)
    assert "\r" not in capsys.readouterr().err  # captured stderr is no terminal, like a pipe


def test_download_checksum_mismatch_everywhere(server, tmp_path):
    (server.root / "f.bin").write_bytes(b"wrong content")
    dest = tmp_path / "dl" / "f.bin"
    with pytest.raises(Lab28Error) as err:
        download_file([server.url("f.bin"), _closed_port_url()], dest, md5="0" * 32, timeout=5)
    msg = str(err.value)
    assert "checksum mismatch" in msg and "connection refused" in msg and "f.bin" in msg
    assert "\n" not in msg and "offline" in msg
    assert not dest.exists() and _no_parts(tmp_path)


def test_download_timeout_is_reported(server, tmp_path):
    (server.root / "slow").mkdir()
    (server.root / "slow" / "f.bin").write_bytes(b"late")
    with pytest.raises(Lab28Error, match="timed out"):
        download_file([server.url("slow/f.bin")], tmp_path / "f.bin", timeout=0.2)
    assert not (tmp_path / "f.bin").exists() and _no_parts(tmp_path)


# --- safe_extract_zip ------------------------------------------------------------------------------------------

def test_extract_replaces_existing_folder_only_on_success(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a/b.txt", "new")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(Lab28Error, match="bad.zip"):
        safe_extract_zip(bad, dest)
    assert (dest / "old.txt").read_text() == "old"  # untouched by the failed extraction
    assert safe_extract_zip(good, dest) == dest
    assert (dest / "a" / "b.txt").read_text() == "new" and not (dest / "old.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "good.zip", "out"]


def test_extract_refuses_symlinks_and_bombs(tmp_path):
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(Lab28Error, match="symbolic link.*data/link"):
        safe_extract_zip(link, tmp_path / "out")

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 100_000)
    with pytest.raises(Lab28Error, match="bomb.zip.*zeros.bin"):
        safe_extract_zip(bomb, tmp_path / "out", max_total_bytes=10_000)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip", "link.zip"]


def test_extract_guards_actual_bytes_when_sizes_lie(tmp_path, monkeypatch):
    bomb = tmp_path / "liar.zip"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("small.bin", b"\0" * 100)
    # zipfile itself stops at the declared size, so simulate a reader that does not: the member claims 100
    # bytes but streams 100 kB. The running byte count must stop it and nothing may be left behind.
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(b"\0" * 100_000))
    with pytest.raises(Lab28Error, match="liar.zip.*small.bin.*unpacks past"):
        safe_extract_zip(bomb, tmp_path / "out", max_total_bytes=10_000)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liar.zip"]


def test_extract_corrupt_member_is_a_zip_error(tmp_path):
    path = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/a.txt", b"hello world")
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"hello world")] ^= 0xFF  # flip a payload byte: the CRC check must catch it
    path.write_bytes(bytes(raw))
    with pytest.raises(Lab28Error, match="corrupt.zip: not a valid zip archive"):
        safe_extract_zip(path, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.zip"]


# --- fetch_idx_dataset ----------------------------------------------------------------------------------------

def test_fetch_idx_dataset_with_mirror_fallback(server, tmp_path):
    rng = np.random.default_rng(0)
    good, bad = server.root / "good", server.root / "bad"
    good.mkdir()
    bad.mkdir()
    md5s = {}
    for split, n in (("train", 6), ("t10k", 3)):
        arrays = {f"{split}-images-idx3-ubyte.gz": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                  f"{split}-labels-idx1-ubyte.gz": rng.integers(0, 10, n, dtype=np.uint8)}
        for name, array in arrays.items():
            md5s[name] = md5_of(write_idx(good / name, array))
            (bad / name).write_bytes(b"not the real file")
    spec = dataclasses.replace(idx_spec("fashion-mnist"), files=md5s)  # the real entry with these files' md5s
    root = tmp_path / "cache"
    folder = fetch.fetch_idx_dataset(spec, root=root, mirrors=[server.url("bad"), server.url("good/")], timeout=5)
    assert folder == root / "fashion-mnist"
    assert {p.name: md5_of(p) for p in folder.iterdir()} == md5s
    assert len(server.requests) == 8  # each file: wrong on mirror 1, then right on mirror 2

    assert fetch.fetch_idx_dataset(spec, root=root, mirrors=[_closed_port_url()], timeout=5) == folder
    assert len(server.requests) == 8  # idempotent: nothing fetched again

    with pytest.raises(Lab28Error, match="checksum mismatch"):
        fetch.fetch_idx_dataset(spec, root=tmp_path / "other", mirrors=[server.url("bad")], timeout=5)
    assert _no_parts(tmp_path)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB28_DATA", str(tmp_path))
    assert fetch.default_data_root() == tmp_path
    monkeypatch.delenv("LAB28_DATA")
    assert fetch.default_data_root() == Path.home() / ".cache" / "lab28"
