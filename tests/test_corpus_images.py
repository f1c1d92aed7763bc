"""Hostile images and files: decompression bombs, FIFOs, giant CSV fields, odd image names, gzip bombs.

Each crafted input must be refused with one line naming the file (exit code 2 where a command reads it), without
hanging, without decoding what it only declares, and without leaving half-written output. `lab28 predict` skips
bad files, predicts the rest and still exits 2. Inputs are generated here; nothing binary is committed.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import signal
import struct
import tracemalloc
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import assert_one_line_error, copy_dataset
from lab28.cli import main
from lab28.errors import Lab28Error
from lab28.workloads.gsn.synth import synth_gsn

HEADER = "name,squares,circles,up,right,down,left"
ODD_NAMES = {"img_00037.png": "a,b.png", "img_00038.png": 'say "hi".png', "img_00039.png": "x, \"y\", z.png"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A GSN folder whose validation rows have names with commas and quotes, and a 1-epoch run trained on it."""
    root = tmp_path_factory.mktemp("images-base")
    data = synth_gsn(root / "gsn", n=40, seed=3)
    with open(data / "labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    for row in rows[1:]:
        if row[0] in ODD_NAMES:
            (data / row[0]).rename(data / ODD_NAMES[row[0]])
            row[0] = ODD_NAMES[row[0]]
    with open(data / "labels.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    assert main(["train", "--data", str(root / "gsn"), "--preset", "quick", "--epochs", "1", "--threads", "1",
                 "--val-size", "8", "--out", str(root / "runs"), "--name", "run"]) == 0
    return root


@contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging forever when a regression blocks (e.g. opening a FIFO no one writes to)."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_decoding(monkeypatch):
    """Decoding anything but a 28 x 28 image fails the test: oversized ones must be refused from their header."""
    original = ImageFile.ImageFile.load

    def load(self):
        if self.size != (28, 28):
            raise AssertionError(f"decoded a {self.size[0]}x{self.size[1]} image")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# ---------------------------------------------------------------- crafted files
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A ~60-byte PNG declaring width x height greyscale pixels; its pixel data is one empty row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + _chunk(b"IEND", b""))


def _png_black(side: int) -> bytes:
    """A complete, valid side x side black greyscale PNG (zeros compress about 1000:1)."""
    packer = zlib.compressobj(1)
    rows = 100
    idat = b"".join(packer.compress(bytes((side + 1) * rows)) for _ in range(side // rows)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _write_bomb(path: Path):
    path.write_bytes(_png_header_only(30000, 30000))


def _write_big(path: Path):
    path.write_bytes(_png_black(10000))


def _make_fifo(path: Path):
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _fifo_behind_link(path: Path):
    fifo = path.with_name("pipe")
    os.mkfifo(fifo)
    path.unlink()
    path.symlink_to(fifo.name)


def _make_dir(path: Path):
    path.unlink()
    path.mkdir()


def _copy_gsn(tmp: Path, base: Path) -> Path:
    return copy_dataset(base / "gsn", tmp / "gsn")


def _png(write):
    def build(tmp, base):
        root = _copy_gsn(tmp, base)
        write(root / "data" / "img_00005.png")
        return ["data", "show", "gsn", "--root", str(root), "--out", str(tmp / "out")]
    return build


def _labels(text: str | None = None, huge_field_mib: int = 0):
    def build(tmp, base):
        root = _copy_gsn(tmp, base)
        with open(root / "data" / "labels.csv", "w") as fh:
            if huge_field_mib:  # built here, not in the table, so the 50 MB lives only while its case runs
                fh.write(HEADER + "\n" + ROW + "img_1.png," + "9" * (huge_field_mib << 20) + ",0,0,0,0,0\n")
            else:
                fh.write(text)
        return ["data", "show", "gsn", "--root", str(root), "--out", str(tmp / "out")]
    return build


def _train_on(write):
    """`lab28 train` on a folder holding the hostile image: refused before a run folder is made."""
    def build(tmp, base):
        root = _copy_gsn(tmp, base)
        write(root / "data" / "img_00005.png")
        return ["train", "--data", str(root), "--preset", "quick", "--epochs", "1", "--threads", "1",
                "--val-size", "8", "--out", str(tmp / "out")]
    return build


def _predict_one(write):
    """`lab28 predict` given only the hostile file: nothing usable, so one error line and no --out file."""
    def build(tmp, base):
        write(tmp / "mine.png")
        return ["predict", str(base / "runs" / "run"), str(tmp / "mine.png"), "--device", "cpu",
                "--out", str(tmp / "out" / "p.csv")]
    return build


ROW = "img_00000.png,4,6,0,0,0,0\n"
CLI_CASES = {
    "png declares 30000x30000": (_png(_write_bomb), "img_00005.png: image is far larger than 28x28"),
    "png 10000x10000": (_png(_write_big), "img_00005.png: image is 10000x10000, expected 28x28"),
    "png is a fifo": (_png(_make_fifo), "img_00005.png: not a regular file"),
    "png links to a fifo": (_png(_fifo_behind_link), "img_00005.png: not a regular file"),
    "png is a folder": (_png(_make_dir), "img_00005.png: not a regular file"),
    "train on a png bomb": (_train_on(_write_bomb), "img_00005.png: image is far larger than 28x28"),
    "train on a fifo": (_train_on(_make_fifo), "img_00005.png: not a regular file"),
    "labels 50 MB field": (_labels(huge_field_mib=50), "labels.csv, row 3: malformed CSV (field larger than field limit"),
    "labels name with newline": (_labels(HEADER + '\n"img\n00000.png",4,6,0,0,0,0\n'),
                                 "labels.csv, row 2: bad image name 'img\\n00000.png' (control characters"),
    "labels name with escape": (_labels(HEADER + "\nimg\x1b[2J.png,4,6,0,0,0,0\n"),
                                "row 2: bad image name 'img\\x1b[2J.png' (control characters"),
    "predict a bomb": (_predict_one(_write_bomb), "mine.png: image is far larger than 28x28"),
    "predict a fifo": (_predict_one(_make_fifo), "mine.png: not a regular file"),
    "predict a 10000x10000 png": (_predict_one(_write_big), "mine.png: image is 10000x10000, expected 28x28"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_refuses_hostile_input(case, base, tmp_path, capsys, no_decoding):
    build, fragment = CLI_CASES[case]
    args = build(tmp_path, base)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught, _deadline(20):
        warnings.simplefilter("always")
        assert main(args) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, fragment)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert not (tmp_path / "out").exists()  # nothing half-written


# ---------------------------------------------------------------- predict skips bad files, predicts the rest
@pytest.mark.parametrize("write, reason", [
    (_write_bomb, "image is far larger than 28x28"),
    (_make_fifo, "not a regular file"),
    (lambda p: Image.new("L", (28, 30)).save(p), "image is 28x30, expected 28x28"),
    (lambda p: p.write_text("hello"), "not a readable PNG"),
], ids=["bomb", "fifo", "wrong size", "not a png"])
def test_predict_skips_bad_files_and_predicts_the_rest(write, reason, base, tmp_path, capsys, no_decoding):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("img_00001.png", "img_00002.png"):
        shutil.copy(base / "gsn" / "data" / name, folder / name)
    (folder / "link.png").symlink_to(base / "gsn" / "data" / "img_00003.png")  # a link to a PNG is fine
    write(folder / "bad.png")
    capsys.readouterr()
    with _deadline(20):
        assert main(["predict", str(base / "runs" / "run"), str(folder), "--device", "cpu",
                     "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"lab28: skipped {folder / 'bad.png'}: {reason}" or err[0].startswith(
        f"lab28: skipped {folder / 'bad.png'}: {reason} ("), err
    assert err[1] == "lab28: error: 1 image(s) skipped; the predictions cover the others" and len(err) == 2
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [Path(r[0]).name for r in rows[1:]] == ["img_00001.png", "img_00002.png", "link.png"]


def test_predict_prints_good_rows_to_stdout_when_some_are_bad(base, tmp_path, capsys):
    good = base / "gsn" / "data" / "img_00004.png"
    _make_fifo(tmp_path / "pipe.png")
    capsys.readouterr()
    with _deadline(20):
        assert main(["predict", str(base / "runs" / "run"), str(tmp_path / "pipe.png"), str(good),
                     "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert [row[0] for row in csv.reader(out.splitlines()[1:])] == [str(good)]
    assert f"lab28: skipped {tmp_path / 'pipe.png'}: not a regular file" in err and "Traceback" not in err


# ---------------------------------------------------------------- names with commas and quotes round-trip
def test_val_predictions_quote_odd_names(base):
    with open(base / "runs" / "run" / "val_predictions.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["name", "true_class", "pred_class"] and len(rows) == 9
    assert all(len(row) == len(rows[0]) == 9 for row in rows)
    assert set(ODD_NAMES.values()) <= {row[0] for row in rows[1:]}


def test_odd_names_load_from_labels_csv(base):
    from lab28.workloads.gsn.loader import load_gsn

    data = load_gsn(base / "gsn", use_cache=False)
    assert data.names[-3:] == list(ODD_NAMES.values()) and data.images.shape == (40, 1, 28, 28)


# ---------------------------------------------------------------- gzip IDX bombs
def _gzip_idx(path: Path, dims: tuple[int, ...], payload_mib: int):
    """A gzip IDX images file: header `dims`, then payload_mib MiB of zeros, compressed in a stream."""
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">I", 2051) + b"".join(struct.pack(">I", d) for d in dims))
        block = bytes(1 << 20)
        for _ in range(payload_mib):
            fh.write(block)


def test_gzip_idx_bomb_stops_at_the_declared_size(tmp_path):
    from lab28.data.idx import read_idx

    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    _gzip_idx(path, (1, 28, 28), payload_mib=64)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(Lab28Error) as info:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}: unexpected trailing bytes after the 784 bytes of data") and "\n" not in message
    assert peak < 20 << 20, f"peak {peak / 2**20:.0f} MiB while reading a 64 MiB bomb"


def test_idx_header_declaring_too_much_is_refused_unread(tmp_path):
    from lab28.data.idx import read_idx

    path = tmp_path / "huge.idx.gz"
    _gzip_idx(path, (100000, 30000, 30000), payload_mib=1)
    tracemalloc.start()
    try:
        with pytest.raises(Lab28Error, match="the header declares 90000000000000 bytes of data, more than the 4 GiB"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_raw_idx_trailing_bytes_are_counted_without_reading_them(tmp_path):
    from lab28.data.idx import read_idx

    path = tmp_path / "images.idx"
    with open(path, "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, 1, 28, 28) + bytes(784))
        fh.truncate(16 + 784 + (256 << 20))  # sparse: 256 MiB of trailing zeros on disk, none in memory
    tracemalloc.start()
    try:
        with pytest.raises(Lab28Error, match=f"{256 << 20} unexpected trailing bytes after the 784 bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_valid_gzip_idx_still_reads(tmp_path):
    from lab28.data.idx import read_idx, write_idx

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    got = read_idx(write_idx(tmp_path / "x-images-idx3-ubyte.gz", images))
    assert np.array_equal(got, images) and got.flags.writeable
