"""Bad-input corpus: every malformed input lab28 reads gives one clear line, exit code 2, no traceback, no output.

The corpus is generated here (tests/corpus is never committed as binaries). Each case builds its input in a
fresh folder and names the command that must refuse it; inputs that are odd but valid (BOM, CRLF, 16-bit and
palette PNGs) are checked to load correctly instead.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, copy_dataset
from lab28.cli import main
from lab28.errors import Lab28Error

HEADER = "name,squares,circles,up,right,down,left"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny valid GSN set and a finished run trained on it (1 epoch)."""
    root = tmp_path_factory.mktemp("corpus-base")
    assert main(["data", "synth", "gsn", "--n", "24", "--seed", "1", "--out", str(root / "gsn")]) == 0
    assert main(["train", "--synth", "--preset", "quick", "--synth-n", "80", "--val-size", "20", "--epochs", "1",
                 "--threads", "1", "--out", str(root / "runs"), "--name", "run"]) == 0
    return root


def _gsn(tmp: Path, base: Path) -> Path:
    return copy_dataset(base / "gsn", tmp / "gsn")


def _labels(text: str):
    def build(tmp, base):
        root = _gsn(tmp, base)
        (root / "data" / "labels.csv").write_text(text)
        return ["data", "show", "gsn", "--root", str(root), "--out", str(tmp / "out")]
    return build


def _png(write):
    def build(tmp, base):
        root = _gsn(tmp, base)
        write(root / "data" / "img_00005.png")
        return ["data", "show", "gsn", "--root", str(root), "--out", str(tmp / "out")]
    return build


def _truncate_png(path: Path):
    path.write_bytes(path.read_bytes()[:40])


def _config(obj):
    def build(tmp, base):
        (tmp / "config.json").write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
        return ["train", "--config", str(tmp / "config.json"), "--out", str(tmp / "out")]
    return build


def _checkpoint(mutate):
    def build(tmp, base):
        import shutil

        run = tmp / "run"
        shutil.copytree(base / "runs" / "run", run)
        mutate(run / "best.pt")
        return ["eval", str(run), "--data", str(base / "gsn"), "--out", str(tmp / "out" / "m.json")]
    return build


def _newer_format(path: Path):
    state = torch.load(path, weights_only=True)
    state["format"] = 99
    torch.save(state, path)


def _other_model(path: Path):
    torch.save({"model": torch.nn.Linear(3, 3).state_dict(), "format": 1}, path)


ROW = "img_00000.png,4,6,0,0,0,0\n"
CLI_CASES = {
    # labels.csv
    "labels missing column": (_labels(HEADER.rsplit(",", 1)[0] + "\n" + ROW), "labels.csv, row 1: wrong header"),
    "labels extra column": (_labels(HEADER + ",extra\n" + ROW), "labels.csv, row 1: wrong header"),
    "labels wrong header": (_labels("file,a,b,c,d,e,f\n" + ROW), "wrong header"),
    "labels empty file": (_labels(""), "labels.csv: empty file"),
    "labels header only": (_labels(HEADER + "\n"), "labels.csv: no data rows"),
    "labels short row": (_labels(HEADER + "\nimg_00000.png,4,6\n"), "row 2: expected 7 columns, found 3"),
    "labels non-integer": (_labels(HEADER + "\nimg_00000.png,4.5,5.5,0,0,0,0\n"), "row 2: counts must be integers"),
    "labels negative": (_labels(HEADER + "\nimg_00000.png,-4,14,0,0,0,0\n"), "row 2: counts must not be negative"),
    "labels wrong sum": (_labels(HEADER + "\nimg_00000.png,4,5,0,0,0,0\n"), "row 2: counts must sum to 10"),
    "labels one type": (_labels(HEADER + "\nimg_00000.png,10,0,0,0,0,0\n"), "row 2: expected exactly two shape types"),
    "labels three types": (_labels(HEADER + "\nimg_00000.png,4,3,3,0,0,0\n"), "row 2: expected exactly two shape types"),
    "labels duplicate names": (_labels(HEADER + "\n" + ROW + ROW), "row 3: duplicate image name"),
    "labels path traversal": (_labels(HEADER + "\n../img_00000.png,4,6,0,0,0,0\n"), "row 2: bad image name"),
    # PNGs
    "png missing": (_png(lambda p: p.unlink()), "img_00005.png: image named in labels.csv is missing"),
    "png zero bytes": (_png(lambda p: p.write_bytes(b"")), "img_00005.png: not a readable PNG"),
    "png truncated": (_png(_truncate_png), "img_00005.png: not a readable PNG"),
    "png not an image": (_png(lambda p: p.write_text("hello")), "img_00005.png: not a readable PNG"),
    "png wrong size": (_png(lambda p: Image.new("L", (28, 30)).save(p)), "img_00005.png: image is 28x30"),
    # config files
    "config unknown key": (_config({"trian": {}}), "unknown config key 'trian'"),
    "config wrong type": (_config({"train": {"epochs": "ten"}}), "config key 'epochs' must be int"),
    "config negative lr": (_config({"data": {"synth_n": 50, "val_size": 10}, "train": {"lr": -0.1}}),
                           "learning rate must be > 0"),
    "config negative patience": (_config({"data": {"synth_n": 50, "val_size": 10},
                                          "train": {"early_stopping": {"patience": -1}}}), "patience must be >= 0"),
    "config not json": (_config("{train: }"), "config.json: bad config file"),
    # checkpoints
    "checkpoint truncated": (_checkpoint(lambda p: p.write_bytes(p.read_bytes()[:1000])), "best.pt: unreadable checkpoint"),
    "checkpoint other model": (_checkpoint(_other_model), "best.pt: unusable checkpoint"),
    "checkpoint newer format": (_checkpoint(_newer_format), "checkpoint format 99 is newer"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_refuses_bad_input(case, base, tmp_path, capsys):
    build, fragment = CLI_CASES[case]
    args = build(tmp_path, base)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, fragment)
    assert not (tmp_path / "out").exists()  # nothing half-written


# Formats read by library functions whose commands come with the Fashion-MNIST workload and the fetchers.
def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def _zip(members: dict[str, bytes], declared_size: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = buf.getvalue()
    if declared_size is not None:  # lie about the uncompressed size in the central directory (zip-bomb style)
        cd = raw.rfind(b"PK\x01\x02")
        raw = raw[:cd + 24] + struct.pack("<I", declared_size) + raw[cd + 28:]
    return raw


API_CASES = {
    "idx wrong magic": ("idx", _idx(1234, (1, 28, 28), bytes(784)), "bad.idx: not an IDX file (magic 0x000004d2"),
    "idx truncated": ("idx", _idx(2051, (2, 28, 28), bytes(784)), "truncated: expected 1568 bytes of data, found 784"),
    "idx trailing bytes": ("idx", _idx(2051, (1, 28, 28), bytes(790)), "6 unexpected trailing bytes"),
    "idx gz truncated": ("idx.gz", gzip.compress(_idx(2051, (2, 28, 28), bytes(1568)))[:-30], "bad.idx.gz: corrupt gzip"),
    "idx wrong dims": ("pair", (_idx(2051, (1, 32, 32), bytes(1024)), _idx(2049, (1,), bytes(1))), "img.idx: images are 32x32, expected 28x28"),
    "idx counts disagree": ("pair", (_idx(2051, (2, 28, 28), bytes(1568)), _idx(2049, (3,), bytes(3))), "lbl.idx: 3 labels for 2 images"),
    "zip without labels": ("zip", _zip({"data/img_00000.png": b"x"}), "no labels.csv here or in data/"),
    "zip absolute member": ("zip", _zip({"/etc/evil": b"x"}), "a.zip: refusing member with an absolute path"),
    "zip dotdot member": ("zip", _zip({"data/../../evil": b"x"}), "points outside the archive folder"),
    "zip bomb declared size": ("zip", _zip({"data/labels.csv": b"x" * 100}, declared_size=3 * 1024**3),
                               "archive unpacks to more than"),
    "zip not a zip": ("zip", b"PK\x03\x04 garbage", "not a valid zip"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_library_refuses_bad_files(case, tmp_path):
    from lab28.data.download import safe_extract_zip
    from lab28.data.idx import load_idx_pair, read_idx

    kind, content, fragment = API_CASES[case]
    with pytest.raises(Lab28Error) as info:
        if kind.startswith("idx"):
            path = tmp_path / f"bad.{kind}"
            path.write_bytes(content)
            read_idx(path)
        elif kind == "pair":
            (tmp_path / "img.idx").write_bytes(content[0])
            (tmp_path / "lbl.idx").write_bytes(content[1])
            load_idx_pair(tmp_path / "img.idx", tmp_path / "lbl.idx")
        else:
            (tmp_path / "a.zip").write_bytes(content)
            safe_extract_zip(tmp_path / "a.zip", tmp_path / "out")
            from lab28.workloads.gsn.loader import find_labels_csv

            find_labels_csv(tmp_path / "out")
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert not (tmp_path / "out").exists() or kind == "zip" and case == "zip without labels"
    assert not (tmp_path.parent / "evil").exists() and not Path("/etc/evil").exists()


def test_odd_but_valid_pngs_are_converted(tmp_path):
    """16-bit greyscale keeps its top 8 bits; palette images use their palette's grey value."""
    from lab28.workloads.gsn.loader import decode_png

    arr16 = np.zeros((28, 28), np.uint16)
    arr16[3:6, 3:6] = 65535
    Image.fromarray(arr16).save(tmp_path / "a.png")
    got = decode_png(tmp_path / "a.png")
    assert got[4, 4] == 255 and got[0, 0] == 0 and got.dtype == np.uint8
    pal = Image.new("P", (28, 28), 0)
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.putpixel((7, 9), 1)
    pal.save(tmp_path / "b.png")
    got = decode_png(tmp_path / "b.png")
    assert got[9, 7] == 255 and got.sum() == 255
