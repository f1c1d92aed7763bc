"""The MNIST family (Fashion-MNIST, MNIST, KMNIST): one spec entry each, fetched, trained and reported alike."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from lab28.cli import build_parser, main
from lab28.data import fetch
from lab28.data.download import md5_of
from lab28.data.idx import write_idx
from lab28.data.specs import IDX_DATASETS, IDX_FILE_NAMES, IdxSpec, idx_spec
from lab28.errors import Lab28Error
from lab28.workloads.classify.config import PRESETS, preset
from lab28.workloads.classify.data import CLASS_NAMES, FashionDataConfig, load_fashion
from lab28.workloads.classify.report import run_spec
from lab28.workloads.classify.task import PIXEL_MEAN, PIXEL_STD, FashionTask
from test_download import _no_parts, server  # noqa: F401  (server: the loopback HTTP fixture)
from test_fashion import write_fashion

KMNIST_CLASSES = ("o (お)", "ki (き)", "su (す)", "tsu (つ)", "na (な)", "ha (は)", "ma (ま)", "ya (や)", "re (れ)",
                  "wo (を)")


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    """Tiny generated IDX sets in the family's layout (the format is the same for every member)."""
    return {name: write_fashion(tmp_path_factory.mktemp(name), n_train=200, n_test=40, seed=seed)
            for seed, name in enumerate(("mnist", "kmnist"))}


# -- the registry ----------------------------------------------------------------------------------------------
def test_registry_has_the_family_and_fashion_is_unchanged():
    assert list(IDX_DATASETS) == ["fashion-mnist", "mnist", "kmnist"]
    fashion, mnist, kmnist = (idx_spec(n) for n in IDX_DATASETS)
    assert fashion.class_names == CLASS_NAMES and (fashion.mean, fashion.std) == (PIXEL_MEAN, PIXEL_STD) == (0.2860, 0.3530)
    assert fashion.files["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert mnist.class_names == tuple("0123456789") and (mnist.mean, mnist.std) == (0.1307, 0.3081)
    assert kmnist.class_names == KMNIST_CLASSES and (kmnist.mean, kmnist.std) == (0.1918, 0.3483)


@pytest.mark.parametrize("name", list(IDX_DATASETS))
def test_every_spec_is_complete(name):
    spec = idx_spec(name)
    assert spec.name == name and spec.title
    assert len(spec.class_names) == 10 == len(set(spec.class_names))
    assert sorted(spec.files) == sorted(IDX_FILE_NAMES) and len(spec.files) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", md5) for md5 in spec.files.values())
    assert len(set(spec.files.values())) == 4
    assert len(spec.mirrors) == 2 and all(re.match(r"https?://[^/]+/.*/$|https?://[^/]+/$", m) for m in spec.mirrors)
    assert 0 < spec.mean < 1 and 0 < spec.std < 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mean = 0.5


def test_no_two_data_sets_share_a_file():
    md5s = [md5 for spec in IDX_DATASETS.values() for md5 in spec.files.values()]
    assert len(md5s) == len(set(md5s))  # a mirror serving one set under another's names is caught by md5


@pytest.mark.parametrize("name", ["emnist", "MNIST", "", None])
def test_unknown_data_set_is_one_line_listing_the_names(name):
    with pytest.raises(Lab28Error) as err:
        idx_spec(name)
    msg = str(err.value)
    assert "\n" not in msg and "unknown data set" in msg
    assert "fashion-mnist, mnist, kmnist" in msg


def test_a_bad_entry_fails_at_definition():
    good = idx_spec("mnist")
    with pytest.raises(ValueError, match="md5"):
        dataclasses.replace(good, files={**good.files, "t10k-labels-idx1-ubyte.gz": "not-an-md5"})
    with pytest.raises(ValueError, match="files must be exactly"):
        dataclasses.replace(good, files={"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(ValueError, match="mirrors"):
        dataclasses.replace(good, mirrors=("ftp://example.org/mnist",))
    with pytest.raises(ValueError, match="class_names"):
        dataclasses.replace(good, class_names=("a", "a"))
    assert isinstance(dataclasses.replace(good, name="mnist-copy"), IdxSpec)


# -- fetching --------------------------------------------------------------------------------------------------
def _serve_family_files(folder, seed=0, n_train=6, n_test=3) -> dict[str, str]:
    """Four small IDX .gz files under `folder`; returns their md5s."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        md5s[f"{split}-images-idx3-ubyte.gz"] = md5_of(write_idx(folder / f"{split}-images-idx3-ubyte.gz",
                                                                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        md5s[f"{split}-labels-idx1-ubyte.gz"] = md5_of(write_idx(folder / f"{split}-labels-idx1-ubyte.gz",
                                                                  rng.integers(0, 10, n, dtype=np.uint8)))
    return md5s


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_fetch_refuses_files_with_the_wrong_md5(server, tmp_path, name):  # noqa: F811
    _serve_family_files(server.root / "m1", seed=1)  # not the real files: the spec's md5s cannot match
    _serve_family_files(server.root / "m2", seed=2)
    root = tmp_path / "cache"
    with pytest.raises(Lab28Error) as err:
        fetch.fetch_idx_dataset(idx_spec(name), root=root, mirrors=[server.url("m1"), server.url("m2/")], timeout=5)
    msg = str(err.value)
    assert "\n" not in msg and msg.count("checksum mismatch") == 2 and "train-images-idx3-ubyte.gz" in msg
    assert server.requests == ["/m1/train-images-idx3-ubyte.gz", "/m2/train-images-idx3-ubyte.gz"]
    assert not (root / name / "train-images-idx3-ubyte.gz").exists() and _no_parts(tmp_path)


def test_fetch_downloads_a_spec_into_its_own_folder(server, tmp_path, monkeypatch):  # noqa: F811
    md5s = _serve_family_files(server.root / "kmnist", n_train=40, n_test=5)
    spec = dataclasses.replace(idx_spec("kmnist"), files=md5s, mirrors=(server.url("kmnist/"),))
    monkeypatch.setenv("LAB28_DATA", str(tmp_path / "cache"))
    folder = fetch.fetch_idx_dataset(spec, timeout=5)  # the spec's own mirrors, the default root
    assert folder == tmp_path / "cache" / "kmnist" == fetch.idx_folder(spec)
    assert {p.name: md5_of(p) for p in folder.iterdir()} == md5s
    # ... and the classification workload finds it there without --data
    splits = load_fashion(FashionDataConfig(dataset="kmnist", val_size=10))
    assert splits.source == str(folder) and (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 5)


def test_cli_fetch_offers_every_registered_data_set():
    parser = build_parser()
    for name in ("gsn", *IDX_DATASETS):
        assert parser.parse_args(["data", "fetch", name]).dataset == name
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "fetch", "emnist"])


# -- the classification workload -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(IDX_DATASETS))
def test_task_normalises_with_the_spec_and_names_classes(name):
    spec = idx_spec(name)
    task = FashionTask(dataset=name)
    x, targets = task.prepare_batch(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([3, 4]), train=False)
    assert torch.allclose(x, torch.full_like(x, -spec.mean / spec.std))
    logits = torch.nn.functional.one_hot(torch.tensor([3, 4]), 10).float()
    metrics = task.metrics(logits, targets)
    assert metrics[f"support/{spec.class_names[3]}"] == 1 and metrics[f"f1/{spec.class_names[4]}"] == 1.0
    assert task.class_names == spec.class_names


def test_default_task_is_fashion_exactly():
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    got, _ = FashionTask().prepare_batch(x, torch.zeros(4, dtype=torch.long), train=False)
    assert torch.equal(got, (x.float().div_(255.0) - 0.2860) / 0.3530)  # the pre-family expression, bit for bit


@pytest.mark.parametrize("dataset", list(IDX_DATASETS))
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_applies_to_every_data_set(name, dataset):
    cfg = preset(name)
    assert cfg.data.dataset == "fashion-mnist"
    cfg.data.dataset = dataset
    cfg.validate()


def test_unknown_dataset_is_a_bad_configuration(tmp_path, capsys, family_dirs):
    config = tmp_path / "config.json"
    cfg = preset("quick")
    cfg.data.dataset = "emnist"
    config.write_text(json.dumps(cfg.to_dict()))
    from lab28.workloads.classify.config import config_from_dict

    with pytest.raises(ValueError, match="unknown dataset 'emnist'; choose one of: fashion-mnist, mnist, kmnist"):
        config_from_dict(cfg.to_dict()).validate()


def test_missing_default_folder_names_its_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB28_DATA", str(tmp_path))
    with pytest.raises(Lab28Error, match=r"mnist: no such folder \(get the data with `lab28 data fetch mnist`\)"):
        load_fashion(FashionDataConfig(dataset="mnist"))
    (tmp_path / "kmnist").mkdir()
    with pytest.raises(Lab28Error, match="no Kuzushiji-MNIST training files"):
        load_fashion(FashionDataConfig(dataset="kmnist"))


def test_mnist_loads_like_fashion(family_dirs):
    splits = load_fashion(FashionDataConfig(dataset="mnist", path=str(family_dirs["mnist"]), val_size=50))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (150, 50, 40)
    assert splits.val.class_counts() == [5] * 10


def test_kmnist_train_run_uses_kmnist_names(tmp_path, family_dirs):
    out = tmp_path / "runs"
    assert main(["train", "kmnist", "--preset", "quick", "--data", str(family_dirs["kmnist"]),
                 "--val-size", "50", "--epochs", "1", "--threads", "1", "--device", "cpu", "--out", str(out),
                 "--name", "k"]) == 0
    run = out / "k"
    assert json.loads((run / "config.json").read_text())["data"]["dataset"] == "kmnist"
    final = json.loads((run / "final_metrics.json").read_text())
    for split in ("val", "test"):
        for cls in KMNIST_CLASSES:
            assert f"f1/{cls}" in final[split] and f"support/{cls}" in final[split]
        assert not any("Trouser" in key for key in final[split])
    assert final["test"]["support/wo (を)"] == 4
    with np.load(run / "prediction_samples.npz") as z:
        assert tuple(z["class_names"]) == KMNIST_CLASSES
    for fig in ("curves.png", "confusion.png", "predictions.png", "confusion_test.png"):
        assert (run / "figures" / fig).is_file()
    assert (run / "tensorboard").is_dir()


def test_kmnist_suite_report_is_titled_and_tabled_by_the_spec(tmp_path, family_dirs):
    out = tmp_path / "suites"
    assert main(["suite", "kmnist", "--preset", "quick", "--models", "simple-cnn",
                 "--data", str(family_dirs["kmnist"]), "--val-size", "50", "--epochs", "1", "--threads", "1",
                 "--device", "cpu", "--tensorboard", "false", "--out", str(out), "--name", "s"]) == 0
    report = (out / "s" / "report.md").read_text()
    assert report.startswith("# Kuzushiji-MNIST: simple-cnn\n")
    assert "Fashion-MNIST" not in report
    for cls in KMNIST_CLASSES:
        assert f"| {cls} |" in report
    assert "| Trouser |" not in report


def test_report_refuses_a_suite_mixing_data_sets(tmp_path, family_dirs):
    out = tmp_path / "suites"
    assert main(["suite", "mnist", "--preset", "quick", "--models", "simple-cnn,gated-cnn",
                 "--data", str(family_dirs["mnist"]), "--val-size", "50", "--epochs", "1", "--threads", "1",
                 "--device", "cpu", "--tensorboard", "false", "--out", str(out), "--name", "s"]) == 0
    assert "# MNIST: 2 models compared" in (out / "s" / "report.md").read_text()
    config_path = out / "s" / "gated-cnn" / "config.json"
    config = json.loads(config_path.read_text())
    config["data"]["dataset"] = "kmnist"
    config_path.write_text(json.dumps(config))
    from lab28.runs.suite import write_report

    with pytest.raises(Lab28Error, match="different data sets.*simple-cnn: mnist.*gated-cnn: kmnist"):
        write_report(out / "s")


def test_run_folders_from_before_the_setting_are_fashion():
    assert run_spec({"data": {"path": "x"}}).name == "fashion-mnist"
    assert run_spec({}).name == "fashion-mnist"
    assert run_spec({"data": {"dataset": "mnist"}}).name == "mnist"


def test_figure_labels_drop_glyphs_the_font_lacks():
    from lab28.plotting import _font_codes, drawable

    assert drawable("T-shirt/top") == "T-shirt/top" and drawable("0") == "0"
    if ord("お") in _font_codes():
        pytest.skip("this machine's figure font draws hiragana: labels stay whole")
    assert [drawable(n) for n in KMNIST_CLASSES] == ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
    assert drawable("お") == "お"  # nothing drawable at all: keep it rather than an empty label
