"""The Python API (lab28.train / load / evaluate) and the workload-free prediction path (lab28.runs.predict) on
tiny data: the docs example runs as written, every input form gives the same records, and the records agree with
the `lab28 predict` CSV, for GSN and Fashion-MNIST runs."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lab28
from lab28.cli import main
from lab28.errors import Lab28Error
from lab28.runs.predict import predict_files
from lab28.workloads.classify.data import CLASS_NAMES
from lab28.workloads.gsn.labels import SHAPES, class_name, decode_classes, pair_name
from lab28.workloads.gsn.loader import load_gsn
from test_fashion import write_fashion

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = dict(threads=1, progress=False)


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README holds exactly one python example"
    return blocks[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The README's Python example, executed as written in an empty folder: its variables."""
    folder = tmp_path_factory.mktemp("docs-example")
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("LAB28_DATA", str(folder / "cache"))
        exec(compile(readme_example(), str(README), "exec"), namespace)
        namespace["run"] = namespace["run"].resolve()
        namespace["folder"] = namespace["folder"].resolve()
    return namespace


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A tiny IDX folder and a 1-epoch Fashion-MNIST run trained on it through lab28.training."""
    root = tmp_path_factory.mktemp("api-fashion")
    data = write_fashion(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB28_DATA", str(root / "cache"))
        run = lab28.train("fashion-mnist", preset="quick", data=data, out=root / "runs", epochs=1, val_size=50,
                          batch_size=64, tensorboard=False, **TINY)
    return data, run


def _write_pngs(folder: Path, images: np.ndarray, mode: str = "L") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"im{i}.png")
        pil = Image.fromarray(image, "L")
        (pil.convert(mode) if mode != "L" else pil).save(paths[-1])
    return paths


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- the docs example and GSN records ------------------------------------------------------------------------
def test_docs_example_runs(example):
    run, records, metrics = example["run"], example["records"], example["metrics"]
    assert (run / "best.pt").is_file() and run.name == "gsn-quick"
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 1
    assert len(records) == 3 and 0 <= metrics["accuracy"] <= 1 and metrics["rmse"] >= 0
    assert json.loads((run / "eval-demo.json").read_text())["metrics"] == metrics
    model = example["model"]
    assert isinstance(model.torch, torch.nn.Module) and model.config.task.setting == "joint"


def test_gsn_tensor_array_and_png_paths_give_the_same_records(example):
    model, folder = example["model"], example["folder"]
    paths = sorted(folder.glob("*.png"))[:5]
    images = load_gsn(folder).images[:5]  # N x 1 x 28 x 28 uint8, read as the loader reads them (red channel)
    floats = images[:, 0].float()
    before = floats.clone()
    by_tensor = model.predict(images[:, 0])
    assert model.predict(images.numpy()) == by_tensor
    assert model.predict(floats) == by_tensor and torch.equal(floats, before)  # the caller's tensor is untouched
    assert model.predict(paths) == by_tensor
    assert model.predict([str(p) for p in paths]) == by_tensor
    assert model.predict([image.numpy() for image in images[:, 0]]) == by_tensor
    one = model.predict(str(paths[0]))  # a batch of one: the same answer up to float rounding of another batch size
    assert len(one) == 1 and one[0]["class"] == by_tensor[0]["class"] and model.predict([]) == []
    assert list(one[0]["counts"].values()) == pytest.approx(list(by_tensor[0]["counts"].values()), abs=1e-4)


def test_gsn_records_decode_and_agree_with_the_cli_csv(example, tmp_path, capsys):
    model, folder, run = example["model"], example["folder"], example["run"]
    paths = sorted(folder.glob("*.png"))[:4]
    records = model.predict(paths)
    for r in records:
        assert r["class_name"] == class_name(r["class"]) and r["pair"] == pair_name(r["class"] // 9)
        assert list(r["counts"]) == list(SHAPES) and all(isinstance(v, float) for v in r["counts"].values())
        # joint, the preset's posterior readout, as GSNTask.predict and the metrics use: the counts of valid classes
        # (ten shapes each) averaged over the class probabilities
        assert r["counts_from"] == "class_posterior" and sum(r["counts"].values()) == pytest.approx(10, abs=1e-3)
        probs = [p for _, p in r["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert r["top_k"][0][0] == r["class_name"]  # joint/cls: the class is the class head's most likely one
    assert main(["predict", str(run), *map(str, paths), "--out", str(tmp_path / "p.csv"), "--device", "cpu"]) == 0
    rows = _csv_rows((tmp_path / "p.csv").read_text())
    assert rows[0] == ["file", *model.columns]
    assert rows[0][:5] == ["file", "class", "class_name", "pair", "count_squares"]
    assert [row[1:] for row in rows[1:]] == [[str(c) for c in model._predictor.row(r)] for r in records]
    for row, r in zip(rows[1:], records):
        assert int(row[1]) == r["class"] and row[2] == r["class_name"]
        assert [float(v) for v in row[4:10]] == pytest.approx(list(r["counts"].values()), abs=1e-3)
    path, text, skipped = predict_files(run, [folder], device="cpu")
    assert path is None and skipped == [] and len(_csv_rows(text)) == 21  # the folder's 20 PNGs, sorted


@pytest.mark.parametrize("setting, count_readout", [("cls", "setting"), ("reg", "posterior")])
def test_gsn_counts_come_from_the_head_the_setting_trusts(setting, count_readout, tmp_path):
    run = lab28.train("gsn", preset="quick", synth=True, out=tmp_path, setting=setting, synth_n=60, val_size=20,
                      epochs=1, count_readout=count_readout, **TINY)
    task = json.loads((run / "config.json").read_text())["task"]
    assert task["setting"] == setting and task["count_readout"] == count_readout
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (4, 28, 28), dtype=np.uint8) * 255)
    records = lab28.load(run).predict(images)
    for r in records:
        counts = torch.tensor(list(r["counts"].values()))
        assert r["top_k"][0][0] == r["class_name"]
        if setting == "cls":
            assert r["counts_from"] == "class_head"
            assert counts.tolist() == decode_classes(torch.tensor([r["class"]]))[0].float().tolist()
        else:  # reg: the class is the valid configuration nearest to the counts; no class-head probabilities
            assert r["counts_from"] == "count_head" and all(p is None for _, p in r["top_k"])
            nearest = torch.cdist(counts[None].float(), decode_classes(torch.arange(135)).float()).argmin()
            assert r["class"] == int(nearest)


# -- Fashion-MNIST ---------------------------------------------------------------------------------------------
def test_fashion_train_load_predict_and_evaluate(fashion, tmp_path):
    data, run = fashion
    assert run.name == "fashion-mnist-quick"
    model = lab28.load(run)
    assert model.workload == "classify" and model.config.model.name == "simple-cnn"
    from lab28.data.idx import read_idx

    images = read_idx(data / "t10k-images-idx3-ubyte")[:6]
    records = model.predict(torch.from_numpy(images))
    assert model.predict(images[:, None]) == records
    assert model.predict(_write_pngs(tmp_path / "grey", images)) == records
    assert model.predict(_write_pngs(tmp_path / "rgb", images, "RGB")) == records  # colour: read as luminance
    for r in records:
        assert r["class_name"] == CLASS_NAMES[r["class"]] and r["top_k"][0] == (r["class_name"], r["probability"])
        assert set(r) == {"class", "class_name", "probability", "top_k"}
    result = lab28.evaluate(run, data)
    assert result["split"] == "t10k" and result["images"] == 60 and len(result["confusion"]) == 10
    assert "f1/Trouser" in result["metrics"] and 0 <= result["metrics"]["accuracy"] <= 1
    assert json.loads((run / "eval-data.json").read_text()) == result


def test_fashion_evaluate_falls_back_to_train_and_names_an_empty_folder(fashion, tmp_path):
    data, run = fashion
    train_only = tmp_path / "train-only"
    train_only.mkdir()
    for f in data.glob("train-*"):
        shutil.copy(f, train_only / f.name)
    from lab28.runs.model import evaluate_run

    path, result = evaluate_run(run, train_only, out_path=tmp_path / "m.json", device="cpu")
    assert path == tmp_path / "m.json" and result["split"] == "train" and result["images"] == 200
    (tmp_path / "empty").mkdir()
    with pytest.raises(Lab28Error, match=f"^{re.escape(str(tmp_path / 'empty'))}: no labelled IDX files"):
        lab28.evaluate(run, tmp_path / "empty")


def test_fashion_tta_only_for_runs_trained_with_flips(fashion, tmp_path):
    data, run = fashion
    result = lab28.evaluate(run, data, out=tmp_path / "tta.json", tta=True)
    assert 0 <= result["metrics_tta"]["accuracy"] <= 1
    copy = shutil.copytree(run, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    config["augment"]["hflip"] = 0.0
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(Lab28Error, match="never trained with"):
        lab28.evaluate(copy, data, tta=True)


def test_predict_files_and_the_cli_on_a_fashion_run(fashion, tmp_path, capsys):
    data, run = fashion
    from lab28.data.idx import read_idx

    paths = _write_pngs(tmp_path / "mine", read_idx(data / "t10k-images-idx3-ubyte")[:5])
    (tmp_path / "mine" / "bad.png").write_text("not a png")
    out, text, skipped = predict_files(run, [tmp_path / "mine"], out_path=tmp_path / "p.csv")
    rows = _csv_rows((tmp_path / "p.csv").read_text())
    assert out == tmp_path / "p.csv" and text == "" and len(skipped) == 1
    assert "bad.png: not a readable PNG" in skipped[0]
    assert rows[0][:4] == ["file", "class", "class_name", "probability"] and len(rows) == 6
    assert [Path(r[0]).name for r in rows[1:]] == [p.name for p in paths]
    assert [r[2] for r in rows[1:]] == [r["class_name"] for r in lab28.load(run).predict(paths)]
    # the command line reaches the same engine: predict and eval work on a Fashion-MNIST run folder
    assert main(["predict", str(run), *map(str, paths), "--out", str(tmp_path / "cli.csv")]) == 0
    assert _csv_rows((tmp_path / "cli.csv").read_text()) == rows
    assert main(["eval", str(run), "--data", str(data), "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["images"] == 60


def test_class_names_come_from_the_runs_data_set(fashion, tmp_path):
    """The run's config.json names its data set (lab28.data.specs); runs from before the key were Fashion-MNIST."""
    _, run = fashion
    copy = shutil.copytree(run, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    image = np.zeros((1, 28, 28), np.uint8)
    del config["data"]["dataset"]
    (copy / "config.json").write_text(json.dumps(config))
    assert lab28.load(copy).predict(image)[0]["class_name"] in CLASS_NAMES
    config["data"]["dataset"] = "mnist"
    (copy / "config.json").write_text(json.dumps(config))
    assert lab28.load(copy).predict(image)[0]["class_name"] in [str(d) for d in range(10)]


# -- one-line errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, fragment", [
    (lambda out: lab28.train("gsn", preset="quick", out=out, epochz=2), "unknown config key 'epochz' for gsn (did you "
                                                                        "mean 'epochs'?); valid keys: batch_size"),
    (lambda out: lab28.train("gsn", preset="quick", out=out, **{"train.epochz": 2}),
     "unknown config key 'train.epochz'"),
    (lambda out: lab28.train("gsn", out=out), "the lab preset needs data=DIR (a GSN folder) or synth=True"),
    (lambda out: lab28.train("gsn", preset="tiny", out=out), "unknown preset 'tiny'"),
    (lambda out: lab28.train("mnist-9", out=out), "unknown data set 'mnist-9'; choose one of: gsn, fashion-mnist, mnist, kmnist"),
    (lambda out: lab28.train("fashion-mnist", synth=True, out=out), "there is no synthetic image-classification data"),
    (lambda out: lab28.train("gsn", preset="quick", out=out, lr="fast"), "bad configuration: config key 'lr' must be"),
    (lambda out: lab28.train("gsn", preset="quick", out=out, epochs=0), "bad configuration: epochs must be >= 1"),
    (lambda out: lab28.train("fashion-mnist", out=out, model="resnet-9000"), "model 'resnet-9000'"),
])
def test_train_errors_are_one_line_and_create_nothing(call, fragment, tmp_path):
    with pytest.raises(Lab28Error) as info:
        call(tmp_path / "runs")
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_predict_input_errors(example, tmp_path):
    model = example["model"]
    for images, fragment in [(torch.zeros(28, 28), "add a batch dimension"), (np.zeros((2, 3, 28, 28)), "2 x 3 x 28"),
                             (torch.full((1, 28, 28), 300.0), "values 0..255"), ("nowhere.png", "nowhere.png: no such"),
                             ([tmp_path, np.zeros((28, 28))], "not a mix")]:
        with pytest.raises(Lab28Error, match=re.escape(fragment)):
            model.predict(images)
    with pytest.raises(Lab28Error, match="not a finished run folder"):
        lab28.load(tmp_path)


def test_models_and_data_sets():
    assert lab28.datasets() == ["gsn", "fashion-mnist", "mnist", "kmnist"]
    assert lab28.list_models("fashion-mnist") == lab28.list_models("classify") == sorted(
        ["simple-cnn", "small-resnet", "spatial-attention-cnn", "gated-cnn"])
    assert "shape-classifier" in lab28.list_models() and lab28.list_models("gsn") == [
        "compact-cnn", "counting-resnet", "counting-resnet-p4", "counting-resnet-p4-fullres",
        "counting-resnet-p4-gated", "counting-resnet-p4-local", "counting-resnet-p4-symmetric", "shape-classifier"]
    with pytest.raises(Lab28Error, match="unknown workload or data set"):
        lab28.list_models("cifar")


def test_import_is_light_and_train_stays_callable():
    """`import lab28` loads no torch; lab28.train stays the API's function after the engine package is imported."""
    code = ("import sys, lab28; assert 'torch' not in sys.modules, 'torch imported'; "
            "import lab28.training.trainer, inspect; assert callable(lab28.train); "
            "assert 'dataset' in inspect.signature(lab28.train).parameters; from lab28 import train, load, evaluate")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(lab28.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_report_finds_the_workload_of_a_suite_or_a_run(fashion, tmp_path):
    from lab28.runs.suite import write_report

    _, run = fashion
    suite = tmp_path / "suite"
    shutil.copytree(run, suite / "simple-cnn")
    shutil.rmtree(suite / "simple-cnn" / "figures")
    assert write_report(suite / "simple-cnn") == suite / "simple-cnn" / "figures"  # one run: its figures, redrawn
    assert (suite / "simple-cnn" / "figures" / "confusion.png").is_file()
    (suite / "suite.json").write_text(json.dumps({"runs": ["simple-cnn"]}))
    assert write_report(suite) == suite / "report.md" and "simple-cnn" in (suite / "report.md").read_text()
    with pytest.raises(Lab28Error, match="no such folder"):
        write_report(tmp_path / "nowhere")
