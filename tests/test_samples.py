"""prediction_samples.npz (lab28.runs.samples): rows chosen, written and read back as saved; a crafted or damaged
file is refused with one line naming it, and never executes code."""

import io

import numpy as np
import pytest

from lab28.errors import Lab28Error
from lab28.runs.samples import choose_rows, read_samples, write_samples
from lab28.workloads.classify.report import SAMPLE_COLUMNS as CLASSIFY_COLUMNS, plot_prediction_grid
from lab28.workloads.gsn.figures import SAMPLE_COLUMNS as GSN_COLUMNS


def gsn_arrays(n: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    true_counts = np.zeros((n, 6), dtype=np.int64)
    true_counts[:, 0], true_counts[:, 1] = 3, 7
    return {"images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), "true": np.full(n, 2, dtype=np.int64),
            "pred": np.arange(n, dtype=np.int64), "val_index": np.arange(10, 10 + n, dtype=np.int64),
            "true_counts": true_counts, "pred_counts": rng.random((n, 6), dtype=np.float32) * 9}


def test_choose_rows_adds_mistakes_to_the_random_ones():
    wrong = np.zeros(100, dtype=bool)
    wrong[[3, 50, 97]] = True
    rows = choose_rows(wrong, random=10, mistakes=5, seed=1)
    assert list(rows) == sorted(set(rows.tolist())) and rows.dtype == np.int64
    assert {3, 50, 97} <= set(rows.tolist()) and 10 + 0 <= len(rows) <= 13
    assert list(choose_rows(wrong, random=10, mistakes=5, seed=1)) == list(rows)  # the same seed, the same rows
    assert len(choose_rows(np.zeros(4, dtype=bool), random=10, mistakes=5)) == 4


def test_gsn_samples_round_trip(tmp_path):
    arrays = gsn_arrays()
    write_samples(tmp_path / "s.npz", **arrays)
    back = read_samples(tmp_path / "s.npz", GSN_COLUMNS)
    assert set(back) == set(arrays)
    for name, a in arrays.items():
        assert back[name].dtype == a.dtype and np.array_equal(back[name], a), name


def _write_raw(path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _refused(path, columns, fragment):
    with pytest.raises(Lab28Error) as err:
        read_samples(path, columns)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message, message


@pytest.mark.parametrize("change, fragment", [
    ({"images": np.zeros((5, 28, 27), dtype=np.uint8)}, "images has shape (5, 28, 27), expected (5, 28, 28)"),
    ({"images": np.zeros((5, 28, 28), dtype=np.float64)}, "images has dtype float64"),
    ({"true_counts": np.zeros((4, 6), dtype=np.int64)}, "true_counts has shape (4, 6)"),
    ({"pred": np.full(5, 135, dtype=np.int64)}, "pred holds 135, above 134"),
    ({"true": np.full(5, -1, dtype=np.int64)}, "true holds -1, below 0"),
    ({"pred_counts": np.zeros((5, 6), dtype="<U3")}, "pred_counts has dtype <U3"),
])
def test_a_gsn_file_of_the_wrong_shape_kind_or_range_is_refused(tmp_path, change, fragment):
    _refused(_write_raw(tmp_path / "bad.npz", **{**gsn_arrays(), **change}), GSN_COLUMNS, fragment)


class _Payload:
    ran = False

    def __reduce__(self):  # what unpickling would call: it must never run
        return (_Payload._mark, ())

    @staticmethod
    def _mark():
        _Payload.ran = True
        return "ran"


def test_a_pickled_object_array_is_refused_without_running_it(tmp_path):
    objects = np.empty(5, dtype=object)
    objects[:] = [_Payload() for _ in range(5)]
    path = _write_raw(tmp_path / "evil.npz", **{**gsn_arrays(), "pred": objects})
    _refused(path, GSN_COLUMNS, "unreadable (Object arrays cannot be loaded when allow_pickle=False)")
    assert not _Payload.ran
    with np.load(path, allow_pickle=True) as z:  # the crafted file is live: a trusting reader would run it
        z["pred"]
    assert _Payload.ran


@pytest.mark.parametrize("content, fragment", [(b"not a zip file", "unreadable"), (b"", "unreadable")])
def test_a_damaged_file_is_refused(tmp_path, content, fragment):
    path = tmp_path / "damaged.npz"
    path.write_bytes(content)
    _refused(path, GSN_COLUMNS, fragment)


def test_a_file_that_unpacks_to_more_than_samples_can_be_is_refused_before_loading(tmp_path):
    """A zip bomb: 72 MB of zeros packed into a few hundred KB; refused from the zip's directory, never unpacked."""
    bomb = {**gsn_arrays(), "padding": np.zeros(72 << 20, dtype=np.uint8)}
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, **bomb)
    del bomb
    assert path.stat().st_size < 1 << 20
    _refused(path, GSN_COLUMNS, "more than prediction samples can be")


def test_a_missing_array_is_named(tmp_path):
    arrays = gsn_arrays()
    del arrays["true_counts"]
    _refused(_write_raw(tmp_path / "short.npz", **arrays), GSN_COLUMNS, "missing array 'true_counts'")


def test_the_classify_grid_reads_its_file_and_refuses_a_bad_one(tmp_path):
    n = 4
    arrays = {"images": np.zeros((n, 28, 28), dtype=np.uint8), "true": np.array([0, 1, 2, 1]),
              "pred": np.array([0, 2, 2, 1]), "val_index": np.arange(n), "confidence": np.full(n, 0.5),
              "class_names": np.array(["a", "b", "c"])}
    write_samples(tmp_path / "ok.npz", **arrays)
    plot_prediction_grid(tmp_path / "ok.npz", tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000
    _write_raw(tmp_path / "beyond.npz", **{**arrays, "pred": np.array([0, 3, 2, 1])})
    with pytest.raises(Lab28Error, match=r"beyond\.npz: a class index is beyond the 3 class_names"):
        plot_prediction_grid(tmp_path / "beyond.npz", tmp_path / "grid.png")
    _refused(_write_raw(tmp_path / "conf.npz", **{**arrays, "confidence": np.full(n, 1.5)}), CLASSIFY_COLUMNS,
             "confidence holds 1.5, above 1.0")


def test_an_array_whose_header_declares_a_huge_shape_is_refused_before_numpy_allocates_it(tmp_path):
    """A tiny file whose images.npy header claims 10^12 images: numpy would allocate that from the header alone."""
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 28, 28), dtype=np.uint8))
    header["shape"] = (10**12, 28, 28)
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", member.getvalue() + b"\0" * 784)
    assert path.stat().st_size < 2000
    _refused(path, GSN_COLUMNS, "more than prediction samples can be")
