"""IDX reading and writing: round trips and one clear, file-naming error for each kind of damage."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from lab28.data.idx import find_fashion_files, load_idx_pair, read_idx, write_idx
from lab28.errors import Lab28Error


@pytest.fixture
def arrays():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, arrays, suffix):
    images, labels = arrays
    ipath = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    lpath = write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    assert (ipath.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    assert np.array_equal(read_idx(ipath), images) and np.array_equal(read_idx(lpath), labels)
    got_images, got_labels = load_idx_pair(ipath, lpath)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 28, 28)
    assert got_labels.dtype == np.int64 and np.array_equal(got_labels, labels)
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob("*.part"))


def test_gzip_detected_by_content_not_name(tmp_path, arrays):
    path = tmp_path / "images.bin"
    write_idx(tmp_path / "x.gz", arrays[0])
    path.write_bytes((tmp_path / "x.gz").read_bytes())
    assert np.array_equal(read_idx(path), arrays[0])


def test_header_layout(tmp_path):
    path = write_idx(tmp_path / "l.idx", np.array([3, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 1])


def _expect(path, pattern, fn=read_idx, *args):
    with pytest.raises(Lab28Error, match=pattern) as err:
        fn(path, *args)
    assert path.name in str(err.value) and "\n" not in str(err.value)


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x08\x04" + b"\x00" * 20)
    _expect(path, "not an IDX file \\(magic")
    tiny = tmp_path / "tiny.idx"
    tiny.write_bytes(b"\x00\x00")
    _expect(tiny, "not an IDX file")


def test_truncated(tmp_path, arrays):
    path = write_idx(tmp_path / "imgs.idx", arrays[0])
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    _expect(path, f"truncated: expected {5 * 28 * 28} bytes of data, found {5 * 28 * 28 - 10}")
    path.write_bytes(data[:10])  # cut inside the header
    _expect(path, "truncated")
    gz = tmp_path / "imgs.idx.gz"
    gz.write_bytes(gzip.compress(data)[:-30])  # damaged gzip stream
    _expect(gz, "gzip")


def test_trailing_bytes(tmp_path, arrays):
    path = write_idx(tmp_path / "labels.idx", arrays[1])
    path.write_bytes(path.read_bytes() + b"junk")
    _expect(path, "4 unexpected trailing bytes")


def test_count_mismatch(tmp_path, arrays):
    images = write_idx(tmp_path / "i.idx", arrays[0])
    labels = write_idx(tmp_path / "l.idx", arrays[1][:4])
    with pytest.raises(Lab28Error, match="l.idx: 4 labels for 5 images in i.idx"):
        load_idx_pair(images, labels)


def test_wrong_dims(tmp_path, arrays):
    images = write_idx(tmp_path / "i.idx", np.zeros((5, 32, 32), dtype=np.uint8))
    labels = write_idx(tmp_path / "l.idx", arrays[1])
    with pytest.raises(Lab28Error, match="i.idx: images are 32x32, expected 28x28"):
        load_idx_pair(images, labels)
    assert load_idx_pair(images, labels, expect_shape=(32, 32))[0].shape == (5, 32, 32)


def test_files_swapped(tmp_path, arrays):
    images = write_idx(tmp_path / "i.idx", arrays[0])
    labels = write_idx(tmp_path / "l.idx", arrays[1])
    with pytest.raises(Lab28Error, match="l.idx: expected an IDX images file \\(magic 2051\\), found a labels"):
        load_idx_pair(labels, images)
    with pytest.raises(Lab28Error, match="i.idx: expected an IDX labels file"):
        load_idx_pair(images, images)


def test_label_out_of_range(tmp_path, arrays):
    images = write_idx(tmp_path / "i.idx", arrays[0])
    labels = write_idx(tmp_path / "l.idx", np.array([0, 9, 3, 10, 1], dtype=np.uint8))
    with pytest.raises(Lab28Error, match="l.idx: label 10 at index 3 is outside 0..9"):
        load_idx_pair(images, labels)


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.idx", "nope.idx")


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x.idx", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))
    assert not list(tmp_path.iterdir())


def test_find_fashion_files(tmp_path, arrays):
    assert find_fashion_files(tmp_path, "train") is None
    assert find_fashion_files(tmp_path / "missing", "train") is None
    write_idx(tmp_path / "train-images-idx3-ubyte", arrays[0])
    assert find_fashion_files(tmp_path, "train") is None  # labels still missing
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays[1])
    assert find_fashion_files(tmp_path, "train") == (
        tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte.gz")
    assert find_fashion_files(tmp_path, "t10k") is None
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", arrays[0])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", arrays[1])
    found = find_fashion_files(tmp_path, "t10k")
    assert found == (tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    assert load_idx_pair(*found)[0].shape == (5, 28, 28)
    with pytest.raises(ValueError):
        find_fashion_files(tmp_path, "test")
