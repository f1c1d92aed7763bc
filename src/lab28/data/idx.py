"""Reader and writer for the IDX format of (Fashion-)MNIST, raw or gzip-compressed.

Layout (big-endian): a 4-byte magic (0x0000, type code 0x08 = uint8, number of dimensions), one uint32 per
dimension, then the uint8 payload. Only the two kinds Fashion-MNIST uses are accepted:
2051 = images (count, rows, cols) and 2049 = labels (count).
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from lab28.errors import file_error

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_NDIM = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
_GZIP_MAGIC = b"\x1f\x8b"
SPLITS = ("train", "t10k")
_CHUNK = 1 << 20
# Far above the largest 28x28 set (EMNIST, ~0.6 GB): a header declaring more is a lie or a bomb.
MAX_DATA_BYTES = 4 << 30


def _read_up_to(path: Path, fh, n: int) -> bytearray:
    """At most n bytes of fh, read in chunks: nothing is allocated for bytes the file does not have."""
    data = bytearray()
    try:
        while len(data) < n:
            chunk = fh.read(min(_CHUNK, n - len(data)))
            if not chunk:
                break
            data += chunk
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise file_error(path, f"corrupt gzip data ({exc})") from None
    return data


def _parse(path: Path, fh, size: int | None) -> tuple[int, np.ndarray]:
    """(magic, array) from an open IDX stream. size: the file's size for a raw file, None for gzip.

    Reads at most one byte past the size the header declares, so a small gzip file that inflates to
    gigabytes is refused after inflating only what the header promised.
    """
    head = _read_up_to(path, fh, 4)
    if len(head) < 4:
        raise file_error(path, f"not an IDX file (only {len(head)} bytes)")
    magic = int.from_bytes(head, "big")
    if magic not in _NDIM:
        raise file_error(path, f"not an IDX file (magic {magic:#010x}, expected {IMAGES_MAGIC} or {LABELS_MAGIC})")
    ndim = _NDIM[magic]
    header = 4 + 4 * ndim
    head += _read_up_to(path, fh, header - 4)
    if len(head) < header:
        raise file_error(path, f"truncated: the header needs {header} bytes, found {len(head)}")
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)
    if expected > MAX_DATA_BYTES:
        raise file_error(path, f"the header declares {expected} bytes of data, more than the "
                               f"{MAX_DATA_BYTES // 2**30} GiB lab28 reads")
    data = _read_up_to(path, fh, expected + 1)
    if len(data) < expected:
        raise file_error(path, f"truncated: expected {expected} bytes of data, found {len(data)}")
    if len(data) > expected:
        count = f"{size - header - expected} " if size is not None else ""
        raise file_error(path, f"{count}unexpected trailing bytes after the {expected} bytes of data")
    # A bytearray of exactly the data: the array is writable and pins no other buffer.
    return magic, np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _read(path: Path | str) -> tuple[int, np.ndarray]:
    """(magic, array) of one IDX file, gunzipped when it starts with the gzip magic (names are not trusted).

    Every structural problem is a one-line Lab28Error naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if not gzipped:
                return _parse(path, raw, os.fstat(raw.fileno()).st_size)
            with gzip.GzipFile(fileobj=raw) as fh:
                return _parse(path, fh, None)
    except OSError as exc:  # missing, a directory, no permission...
        raise file_error(path, exc.strerror or str(exc)) from exc


def read_idx(path: Path | str) -> np.ndarray:
    """The uint8 array stored in an IDX file: (count, rows, cols) for images, (count,) for labels."""
    return _read(path)[1]


def load_idx_pair(
    images_path: Path | str, labels_path: Path | str, expect_shape: tuple[int, int] = (28, 28)
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) int64 from a matching pair of IDX files, cross-checked."""
    images_path, labels_path = Path(images_path), Path(labels_path)
    for path, want in ((images_path, IMAGES_MAGIC), (labels_path, LABELS_MAGIC)):
        magic, array = _read(path)
        if magic != want:  # e.g. the two files swapped on the command line
            raise file_error(path, f"expected an IDX {_KIND[want]} file (magic {want}), "
                                   f"found a {_KIND[magic]} file (magic {magic})")
        if want == IMAGES_MAGIC:
            images = array
        else:
            labels = array
    if tuple(images.shape[1:]) != tuple(expect_shape):
        raise file_error(images_path, f"images are {images.shape[1]}x{images.shape[2]}, "
                                      f"expected {expect_shape[0]}x{expect_shape[1]}")
    if len(images) != len(labels):
        raise file_error(labels_path, f"{len(labels)} labels for {len(images)} images in {images_path.name}")
    if len(labels) and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise file_error(labels_path, f"label {int(labels[bad])} at index {bad} is outside 0..9")
    return images, labels.astype(np.int64)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # prefer the raw file: no decompression needed
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_files(folder: Path | str, split: str) -> tuple[Path, Path] | None:
    """(images, labels) paths of a Fashion-MNIST split ("train" or "t10k") in `folder`, or None if absent."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(folder)
    images = _find(folder, f"{split}-images-idx3-ubyte")
    labels = _find(folder, f"{split}-labels-idx1-ubyte")
    return (images, labels) if images is not None and labels is not None else None


def write_idx(path: Path | str, array: np.ndarray) -> Path:
    """Write a uint8 array of 1 (labels) or 3 (images) dimensions as IDX; gzip when the name ends in .gz."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"write_idx needs a uint8 array with 1 or 3 dimensions, got {array.dtype} {array.shape}")
    magic = LABELS_MAGIC if array.ndim == 1 else IMAGES_MAGIC
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data += np.ascontiguousarray(array).tobytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)  # mtime=0: identical input gives identical bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)  # atomic: readers never see a half-written file
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
