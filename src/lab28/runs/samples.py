"""prediction_samples.npz: the few validation images (and what the model said about them) behind a run's image
grids, saved when the run finishes so that its figures never re-read the data set or re-run the model.

Every workload writes the same core arrays (N rows):
  images     uint8 N x 28 x 28   the validation images as stored (0..255)
  true, pred int   N             true and predicted class
  val_index  int   N             row of each image in the validation split
and adds its own (a workload passes them to `write_samples` and describes them to `read_samples`).
Reading never executes code from the file (no pickled objects), and a file of the wrong shape or kind is a
one-line Lab28Error naming it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_bytes

SAMPLES_FILE = "prediction_samples.npz"
IMAGE_SIZE = 28
ROWS = "N"  # in a Column's shape: the number of saved images


@dataclass(frozen=True)
class Column:
    """What one array of the file must be: numpy dtype kinds (e.g. "iu" for integers, "f", "U" for text), a shape
    whose entries are sizes, ROWS or None (any size), and for numbers an optional closed range."""

    kinds: str
    shape: tuple
    low: float | None = None
    high: float | None = None


INTEGER = "iu"
CORE_COLUMNS = {
    "images": Column("u", (ROWS, IMAGE_SIZE, IMAGE_SIZE)),
    "true": Column(INTEGER, (ROWS,), low=0),
    "pred": Column(INTEGER, (ROWS,), low=0),
    "val_index": Column(INTEGER, (ROWS,), low=0),
}


def choose_rows(wrong: np.ndarray, random: int, mistakes: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: `random` rows at random plus up to `mistakes` more of the rows where `wrong` is True,
    so that the grid of a good model still shows what it gets wrong."""
    rng = np.random.default_rng(seed)
    n = len(wrong)
    chosen = rng.choice(n, size=min(random, n), replace=False)
    others = np.setdiff1d(np.flatnonzero(wrong), chosen)
    extra = rng.choice(others, size=min(mistakes, len(others)), replace=False) if len(others) else others
    return np.sort(np.concatenate([chosen, extra]).astype(np.int64))


def write_samples(path: Path, **arrays: np.ndarray) -> None:
    """Save the arrays (the core ones and the workload's own) as one compressed .npz, atomically."""
    missing = [name for name in CORE_COLUMNS if name not in arrays]
    if missing:
        raise ValueError(f"prediction samples need {', '.join(missing)}")
    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: np.asarray(a) for name, a in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def read_samples(path: Path, extra: dict[str, Column] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a samples file, each checked against CORE_COLUMNS and `extra` (other arrays are ignored)."""
    columns = {**CORE_COLUMNS, **(extra or {})}
    try:
        _check_unpacked_size(path)
        with np.load(path, allow_pickle=False) as z:
            missing = [name for name in columns if name not in z.files]
            if missing:
                raise Lab28Error(f"{path}: missing array {', '.join(repr(m) for m in missing)}")
            arrays = {name: z[name] for name in columns}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # ValueError is also what numpy raises for a pickled (object) array: it is refused, never unpickled.
        raise Lab28Error(f"{path}: unreadable ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    rows = len(arrays["images"]) if arrays["images"].ndim else -1
    for name, column in columns.items():
        _check(path, name, arrays[name], column, rows)
    return arrays


# A run saves a few dozen images (~100 KB unpacked); the bound keeps a crafted file (a zip bomb) out of memory.
MAX_UNPACKED_BYTES = 64 << 20


def _check_unpacked_size(path: Path) -> None:
    """Refuse a file whose arrays would take more than MAX_UNPACKED_BYTES, before numpy allocates any: from the
    zip's directory (what the members unpack to) and from each array's header (the shape numpy would allocate)."""
    with zipfile.ZipFile(path) as archive:
        size = sum(info.file_size for info in archive.infolist())
        declared = 0
        for info in archive.infolist():
            if info.filename.endswith(".npy"):
                with archive.open(info) as member:
                    major, _ = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if major == 1
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                    declared += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if max(size, declared) > MAX_UNPACKED_BYTES:
        raise Lab28Error(f"{path}: holds {max(size, declared)} bytes of arrays, more than prediction samples can "
                         f"be ({MAX_UNPACKED_BYTES} at most)")


def _check(path: Path, name: str, a: np.ndarray, column: Column, rows: int) -> None:
    wanted = tuple("any" if s is None else (rows if s == ROWS else s) for s in column.shape)
    if a.dtype.kind not in column.kinds:
        raise Lab28Error(f"{path}: {name} has dtype {a.dtype}, expected kind {column.kinds!r}")
    if a.ndim != len(wanted) or any(w != "any" and w != s for w, s in zip(wanted, a.shape)):
        raise Lab28Error(f"{path}: {name} has shape {a.shape}, expected {wanted}")
    if a.size and column.low is not None and a.min() < column.low:
        raise Lab28Error(f"{path}: {name} holds {a.min()}, below {column.low}")
    if a.size and column.high is not None and a.max() > column.high:
        raise Lab28Error(f"{path}: {name} holds {a.max()}, above {column.high}")
