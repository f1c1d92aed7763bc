"""GSN loader: round trip, cache behaviour, and one clear error per kind of bad input."""

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA, copy_dataset
from lab28.errors import Lab28Error
from lab28.workloads.gsn.loader import load_gsn, read_labels_csv
from lab28.workloads.gsn.synth import generate


def test_round_trip_matches_generator(small_gsn):
    data = load_gsn(small_gsn)
    images, counts = generate(60, seed=7)
    assert data.images.shape == (60, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert torch.equal(data.counts, torch.from_numpy(counts))
    assert data.names[0] == "img_00000.png" and data.names[-1] == "img_00059.png"
    # The data/ folder itself works too.
    assert torch.equal(load_gsn(small_gsn / "data").counts, data.counts)


def test_split_last_keeps_row_order(small_gsn):
    train, val = load_gsn(small_gsn).split_last(10)
    assert len(train) == 50 and len(val) == 10
    assert val.names[0] == "img_00050.png"
    with pytest.raises(Lab28Error):
        load_gsn(small_gsn).split_last(60)


def test_cache_is_used_and_invalidated(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    first = load_gsn(root)
    caches = list((root / "data").glob(".lab28-cache-*.pt"))
    assert len(caches) == 1
    # Change one image's pixels (and its mtime): the cache must not serve the old pixels.
    img_path = root / "data" / "img_00003.png"
    arr = np.zeros((28, 28, 4), np.uint8)
    arr[..., 3] = 255
    arr[5:9, 5:9, :3] = 255
    Image.fromarray(arr, "RGBA").save(img_path)
    os.utime(img_path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = load_gsn(root)
    assert second.images[3, 0, 5:9, 5:9].eq(255).all() and second.images[3].sum() == 16 * 255
    assert torch.equal(second.images[4], first.images[4])
    # Changing labels.csv changes the key too.
    text = (root / "data" / "labels.csv").read_text()
    (root / "data" / "labels.csv").write_text(text + "\n")
    load_gsn(root)
    assert len(list((root / "data").glob(".lab28-cache-*.pt"))) == 3


def test_uses_one_channel_not_alpha_average(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    data = load_gsn(root, use_cache=False)
    assert set(data.images.unique().tolist()) <= {0, 255}  # averaging with alpha would give 64 / 255


def _write_labels(root: Path, text: str) -> Path:
    (root / "data" / "labels.csv").write_text(text)
    return root


BAD_LABELS = {
    "wrong header": ("name,squares,circles,up,right,down\n", "wrong header"),
    "non-integer": ("name,squares,circles,up,right,down,left\nimg_00000.png,a,10,0,0,0,0\n", "integers"),
    "negative": ("name,squares,circles,up,right,down,left\nimg_00000.png,-2,12,0,0,0,0\n", "negative"),
    "bad sum": ("name,squares,circles,up,right,down,left\nimg_00000.png,3,8,0,0,0,0\n", "sum to 10"),
    "three types": ("name,squares,circles,up,right,down,left\nimg_00000.png,3,3,4,0,0,0\n", "two shape types"),
    "one type": ("name,squares,circles,up,right,down,left\nimg_00000.png,10,0,0,0,0,0\n", "two shape types"),
    "empty": ("", "empty"),
    "path name": ("name,squares,circles,up,right,down,left\n../x.png,4,6,0,0,0,0\n", "plain file name"),
}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_bad_labels_csv(tmp_path, small_gsn, case):
    text, fragment = BAD_LABELS[case]
    root = _write_labels(copy_dataset(small_gsn, tmp_path / "gsn"), text)
    with pytest.raises(Lab28Error) as info:
        load_gsn(root)
    message = str(info.value)
    assert "labels.csv" in message and fragment in message and "\n" not in message
    assert not list((root / "data").glob(".lab28-cache-*"))  # nothing written


def test_bad_row_is_named_by_line(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    lines = (root / "data" / "labels.csv").read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",1,1,1,1,1,5"
    (root / "data" / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(Lab28Error, match=r"labels.csv, row 6: expected exactly two shape types"):
        load_gsn(root)


def test_missing_png(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    (root / "data" / "img_00010.png").unlink()
    with pytest.raises(Lab28Error, match=r"img_00010.png: image named in labels.csv is missing"):
        load_gsn(root)


def test_unreadable_png(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    (root / "data" / "img_00011.png").write_bytes(b"not a png at all")
    with pytest.raises(Lab28Error, match=r"img_00011.png: not a readable PNG"):
        load_gsn(root)


def test_wrong_size_png(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    Image.new("RGBA", (32, 28)).save(root / "data" / "img_00012.png")
    with pytest.raises(Lab28Error, match=r"img_00012.png: image is 32x28, expected 28x28"):
        load_gsn(root)


def test_folder_without_labels(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Lab28Error, match="no labels.csv"):
        load_gsn(tmp_path / "empty")


def test_bom_and_crlf_are_accepted(tmp_path, small_gsn):
    root = copy_dataset(small_gsn, tmp_path / "gsn")
    path = root / "data" / "labels.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    names, counts = read_labels_csv(path)
    assert len(names) == 60 and counts.shape == (60, 6)


@pytest.mark.skipif(not (SHARED_DATA / "gsn" / "gsn-dev-9000.zip").is_file(), reason="shared dev data absent")
def test_real_dev_set_loads_and_second_load_is_fast(tmp_path):
    with zipfile.ZipFile(SHARED_DATA / "gsn" / "gsn-dev-9000.zip") as zf:
        zf.extractall(tmp_path)
    data = load_gsn(tmp_path)
    assert len(data) == 9000 and data.counts.sum(dim=1).eq(10).all()
    assert set(data.images.unique().tolist()) == {0, 255}
    t = time.perf_counter()
    again = load_gsn(tmp_path)
    elapsed = time.perf_counter() - t
    assert torch.equal(again.images, data.images)
    print(f"cached load of 9,000 images: {elapsed:.3f} s")
