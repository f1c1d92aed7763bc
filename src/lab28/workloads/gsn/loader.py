"""Read a GSN data set in the official layout into tensors, with a cache of the decoded images.

Layout: a folder holding `labels.csv` (header `name,squares,circles,up,right,down,left`) and the PNGs it names
(the unpacked official archive has them under `data/`; either that folder or its parent may be given).
Images become one uint8 tensor N x 1 x 28 x 28 (one colour channel: averaging RGBA with alpha would turn the
background grey), counts one int64 tensor N x 6, both in labels.csv row order.

Decoding 10,000 PNGs takes seconds, so the decoded tensors are cached; the cache key hashes labels.csv and every
image's name, size and modification time, so editing either invalidates it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lab28.data.png import IMAGE_SIZE, read_png
from lab28.errors import Lab28Error, file_error
from lab28.workloads.gsn.labels import NUM_SHAPES, SHAPES, encode_counts, validate_counts_row
from lab28.io_utils import atomic_torch_save, user_cache_dir

HEADER = ("name",) + SHAPES
CACHE_VERSION = 1


@dataclass
class GSNData:
    """A GSN data set (or a split of one) as tensors."""

    images: torch.Tensor  # uint8, N x 1 x 28 x 28, values 0..255
    counts: torch.Tensor  # int64, N x 6
    names: list[str]
    source: str = ""

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def classes(self) -> torch.Tensor:
        return encode_counts(self.counts)

    def take(self, index: slice | torch.Tensor) -> "GSNData":
        if isinstance(index, slice):
            names = self.names[index]
        else:
            names = [self.names[i] for i in index.tolist()]
        return GSNData(self.images[index], self.counts[index], names, self.source)

    def split_last(self, val_size: int) -> tuple["GSNData", "GSNData"]:
        """(train, validation): the last `val_size` rows validate, as in the official split (9,000 / 1,000)."""
        if not 0 < val_size < len(self):
            raise Lab28Error(f"{self.source}: val_size must be between 1 and {len(self) - 1}, got {val_size}")
        cut = len(self) - val_size
        return self.take(slice(0, cut)), self.take(slice(cut, None))


def find_labels_csv(root: str | os.PathLike) -> Path:
    """The labels.csv of a data set given its folder or the parent of its `data/` folder."""
    root = Path(root)
    for candidate in (root / "labels.csv", root / "data" / "labels.csv"):
        if candidate.is_file():
            return candidate
    if not root.exists():
        raise file_error(root, "no such folder")
    raise file_error(root, "no labels.csv here or in data/ (expected the unpacked GSN archive)")


def read_labels_csv(path: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """Parse and validate labels.csv: (image names, N x 6 int64 counts). Errors name the file and line."""
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark from a spreadsheet export is harmless, so accept it.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error(path, f"cannot read: {exc}") from None
    rows = _csv_rows(path, text)
    if not rows:
        raise file_error(path, "empty file (expected a header and one row per image)")
    header = tuple(cell.strip() for cell in rows[0])
    if header != HEADER:
        raise file_error(path, f"wrong header {','.join(header)!r}, expected {','.join(HEADER)!r}", row=1)
    names: list[str] = []
    counts: list[list[int]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line (often the last one) carries no label
        if len(row) != len(HEADER):
            raise file_error(path, f"expected {len(HEADER)} columns, found {len(row)}", row=line)
        name = row[0].strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise file_error(path, f"bad image name {name!r} (must be a plain file name)", row=line)
        if not name.isprintable():  # a newline or escape code would break every file and line that shows it
            raise file_error(path, f"bad image name {name!r} (control characters are not allowed)", row=line)
        if name in seen:
            raise file_error(path, f"duplicate image name {name!r}", row=line)
        try:
            values = [int(cell) for cell in row[1:]]
        except ValueError:
            raise file_error(path, f"counts must be integers, got {row[1:]}", row=line) from None
        problem = validate_counts_row(values)
        if problem:
            raise file_error(path, problem, row=line)
        seen.add(name)
        names.append(name)
        counts.append(values)
    if not names:
        raise file_error(path, "no data rows")
    return names, torch.tensor(counts, dtype=torch.long).reshape(-1, NUM_SHAPES)


def _csv_rows(path: Path, text: str) -> list[list[str]]:
    """All rows of a CSV text; a malformed row (e.g. a field over csv's size limit) names its row."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        raise file_error(path, f"malformed CSV ({exc})", row=len(rows) + 1) from None
    return rows


def decode_png(path: Path) -> np.ndarray:
    """One 28 x 28 uint8 channel of a GSN PNG (R of RGB/RGBA, L of greyscale): lab28.data.png.read_png."""
    return read_png(path, channel="R", missing="image named in labels.csv is missing")


def load_gsn(root: str | os.PathLike, use_cache: bool = True) -> GSNData:
    """Load a GSN data set folder (see module docstring), using and refreshing the decoded-image cache."""
    labels_path = find_labels_csv(root)
    folder = labels_path.parent
    names, counts = read_labels_csv(labels_path)
    key = _cache_key(labels_path, names)
    cache_path = _cache_path(folder, key)
    if use_cache and cache_path is not None and cache_path.is_file():
        try:
            cached = torch.load(cache_path, map_location="cpu", weights_only=True)
            images = cached["images"]
            if images.shape == (len(names), 1, IMAGE_SIZE, IMAGE_SIZE) and images.dtype == torch.uint8:
                return GSNData(images, counts, names, str(folder))
        except Exception:  # a corrupt cache is only a missed shortcut: decode again and rewrite it
            pass
    images = torch.from_numpy(np.stack([decode_png(folder / n) for n in names])).unsqueeze(1)
    if use_cache and cache_path is not None:
        try:
            atomic_torch_save({"images": images, "version": CACHE_VERSION}, cache_path)
        except OSError:
            pass  # a read-only cache location must not stop training
    return GSNData(images, counts, names, str(folder))


def _cache_key(labels_path: Path, names: list[str]) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    digest.update(labels_path.read_bytes())
    folder = labels_path.parent
    for name in names:
        try:
            st = os.stat(folder / name)
        except FileNotFoundError:
            raise file_error(folder / name, "image named in labels.csv is missing") from None
        digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:24]


def _cache_path(folder: Path, key: str) -> Path | None:
    """Next to the data when that folder is writable, else in the user cache (shared read-only copies)."""
    if os.access(folder, os.W_OK):
        return folder / f".lab28-cache-{key}.pt"
    base = user_cache_dir() / "gsn-decoded"
    return base / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]}-{key}.pt"
