"""Generic, stdlib-only download and unzip helpers that never leave half-written files behind.

Everything is written to a temporary sibling first and moved into place with an atomic rename, so an
interrupted run (Ctrl-C, lost connection, full disk) leaves either the old state or the complete new one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lab28.errors import file_error
from lab28.io_utils import replace_folder

OFFLINE_HINT = "if you are offline, download it by hand and pass its folder with --root/--data"
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def md5_of(path: Path | str) -> str:
    """Hex md5 of a file, read in chunks so large archives do not need to fit in memory."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(exc: BaseException) -> str:
    """A short, human description of why one mirror failed (the CLI prints errors as one line)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):  # wraps the socket error of a failed connect
        exc = exc.reason if isinstance(exc.reason, BaseException) else Exception(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed before the download was complete"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _one_line(exc) or type(exc).__name__


def _stream(url: str, out, timeout: float, progress: bool) -> int:
    """Copy one URL into the open file `out`; return the byte count. Raises on any network problem."""
    # Some hosts reject urllib's default agent; `timeout` bounds every blocking socket operation.
    request = urllib.request.Request(url, headers={"User-Agent": "lab28"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        written = 0
        progress = progress and sys.stderr.isatty()  # its '\r' frames only garble a piped log
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            written += len(chunk)
            if progress:
                total = f"/{expected / 1e6:.1f}" if expected else ""
                print(f"\r  {url}: {written / 1e6:.1f}{total} MB", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    # http.client silently returns EOF when the server hangs up early, so compare with the announced size.
    if expected is not None and written != expected:
        raise ConnectionError(f"incomplete download (got {written} of {expected} bytes)")
    return written


def download_file(
    urls: list[str], dest: Path, md5: str | None = None, timeout: float = 30.0, progress: bool = False
) -> Path:
    """Download `dest` from the first mirror in `urls` that works (and matches `md5`, when given).

    Idempotent: an existing `dest` with the right checksum (or any existing `dest` when `md5` is None) is
    kept without touching the network. A stale `dest` is only replaced once a verified copy is complete.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5_of(dest) == md5.lower()):
        return dest
    if not urls:
        raise file_error(dest, f"no download address given; {OFFLINE_HINT}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for url in urls:
        # A unique temporary name in dest's folder: same filesystem, so os.replace is atomic.
        fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        part = Path(part_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _stream(url, out, timeout, progress)
            if md5 is not None:
                got = md5_of(part)
                if got != md5.lower():
                    problems.append(f"{url}: checksum mismatch (got {got}, expected {md5.lower()})")
                    continue
            os.replace(part, dest)
            return dest
        except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: malformed URL
            problems.append(f"{url}: {_describe(exc)}")
        finally:
            part.unlink(missing_ok=True)  # no-op after a successful os.replace
    raise file_error(dest, _one_line(f"download failed: {'; '.join(problems)}; {OFFLINE_HINT}"))


def _check_member(zip_path: Path, info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's safe relative path, or a Lab28Error for anything that could escape the target folder."""
    name = info.filename
    if "\\" in name or _DRIVE.match(name) or "\0" in name:
        raise file_error(zip_path, f"refusing suspicious member name {name!r}")
    if name.startswith("/"):
        raise file_error(zip_path, f"refusing member with an absolute path {name!r}")
    rel = PurePosixPath(name)
    if ".." in rel.parts:
        raise file_error(zip_path, f"refusing member {name!r} that points outside the archive folder")
    # Unix mode bits live in the high 16 bits of external_attr; 0o120000 is a symbolic link.
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise file_error(zip_path, f"refusing symbolic link member {name!r}")
    return rel


def safe_extract_zip(zip_path: Path, dest_dir: Path, max_total_bytes: int = 2 * 1024**3) -> Path:
    """Extract `zip_path` into `dest_dir` after checking every member; returns `dest_dir`.

    Refuses path traversal, absolute/drive/backslash names, symlinks and archives that unpack to more than
    `max_total_bytes` (declared sizes are checked up front and actual bytes while writing, since headers
    can lie). Extraction happens in a temporary sibling folder that is renamed onto `dest_dir` at the end.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest_dir.parent, prefix=f".{dest_dir.name}.", suffix=".extracting"))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
            members = [(info, _check_member(zip_path, info)) for info in infos]
            declared = 0
            for info in infos:  # zip-bomb guard before anything is written
                declared += info.file_size
                if declared > max_total_bytes:
                    raise file_error(zip_path, f"archive unpacks to more than the {max_total_bytes} bytes "
                                               f"allowed (reached at member {info.filename!r})")
            written = 0
            for info, rel in members:
                target = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        written += len(chunk)
                        if written > max_total_bytes:
                            raise file_error(zip_path, f"member {info.filename!r} unpacks past the "
                                                       f"{max_total_bytes} bytes allowed")
                        out.write(chunk)
        replace_folder(tmp, dest_dir)
        return dest_dir
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # also raised for CRC errors while reading a member
        raise file_error(zip_path, f"not a valid zip archive ({_one_line(exc)})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
