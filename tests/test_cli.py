"""The command line end to end on tiny synthetic data, and its one-line errors."""

import json
import subprocess
import sys

import pytest

from lab28.cli import main

TINY = ["--synth-n", "200", "--val-size", "50", "--epochs", "1", "--threads", "1"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lab28.cli", *args], capture_output=True, text=True)


def test_synth_show_suite_report_eval(tmp_path, capsys):
    assert main(["data", "synth", "gsn", "--n", "40", "--seed", "3", "--out", str(tmp_path / "synth")]) == 0
    assert (tmp_path / "synth" / "data" / "labels.csv").is_file()
    assert main(["data", "show", "gsn", "--root", str(tmp_path / "synth"), "--out", str(tmp_path / "fig"), "--n", "8"]) == 0
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "class_occurrence.png", "examples.png", "examples_augmented.png"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"augment": {"hflip": 0.0, "vflip": 0.0, "rot90": 0.0}}))
    assert main(["data", "show", "gsn", "--root", str(tmp_path / "synth"), "--out", str(tmp_path / "fig2"), "--n", "8",
                 "--config", str(config)]) == 0
    assert main(["data", "show", "gsn", "--root", str(tmp_path / "synth"), "--out", str(tmp_path / "fig2"), "--n", "8",
                 "--preset", "quick", "--overwrite"]) == 0
    # The joint run reads the class from both heads (the lab preset's readout); cls and reg train one head each.
    assert main(["suite", "gsn", "--synth", "--preset", "quick", "--class-readout-weight", "0.1",
                 "--out", str(tmp_path / "runs"), *TINY]) == 0
    suite = tmp_path / "runs" / "gsn-suite-quick"
    report = (suite / "report.md").read_text()
    assert "Class readout: joint (w = 0.1) read the class from both heads" in report
    started = [line for line in capsys.readouterr().out.splitlines() if " setting=" in line]
    assert sorted("class_readout_weight=0.1" in line for line in started) == [False, False, True]
    assert "setting=joint lam=3.0 class_readout_weight=0.1 train=" in "\n".join(started)
    weights = {s: json.loads((suite / s / "final_metrics.json").read_text())["class_readout_weight"]
               for s in ("cls", "reg", "joint")}
    assert weights == {"cls": 0.0, "reg": 0.0, "joint": 0.1}
    for setting in ("cls", "reg", "joint"):
        assert (suite / setting / "final_metrics.json").is_file()
        assert f"{setting}/figures/confusion_pairs.png" in report
        for figure in ("misclassified.png", "augmentation.png"):
            assert f"({setting}/figures/{figure})" in report and (suite / setting / "figures" / figure).is_file()
    assert "| classification only |" in report and "| regression only |" in report and "The count loss's weight λ" in report
    # The preset evaluates a moving average of the weights: the report says so and gives the trained weights' own best.
    import csv

    own = max(float(r["val_raw_accuracy"]) for r in csv.DictReader(open(suite / "joint" / "metrics.csv")))
    assert "moving average of the trained weights (decay 0.99 per step" in report
    assert f"joint {own:.3f}" in report.split("trained weights themselves over the run:")[1].splitlines()[0]
    assert (suite / "figures" / "curves_overlaid.png").is_file()
    page = (suite / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 19 and 'src="http' not in page and "missing figure" not in page
    # predict on a user's own images (a folder of PNGs) -> one CSV row each
    assert main(["predict", str(suite / "joint"), str(tmp_path / "synth" / "data"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 41 and rows[0].startswith("file,class,class_name,pair,count_squares")
    # top-k is ranked as the class is read, so its first entry is the predicted class
    assert all(r["top1_class_name"] == r["class_name"] for r in csv.DictReader(rows))
    # eval of a saved checkpoint on another GSN-format folder
    assert main(["eval", str(suite / "joint"), "--data", str(tmp_path / "synth"), "--out", str(tmp_path / "e.json"),
                 "--tta"]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["images"] == 40 and 0 <= result["metrics"]["accuracy"] <= 1 and "accuracy" in result["metrics_tta"]
    # ... which prints one summary line of the numbers it wrote, and one for TTA when asked
    plain, tta = result["metrics"], result["metrics_tta"]
    out = capsys.readouterr().out.splitlines()
    assert f"top-1 {plain['accuracy']:.4f}, macro F1 {plain['macro_f1']:.4f}, count RMSE {plain['rmse']:.4f}" in out
    assert f"with TTA: top-1 {tta['accuracy']:.4f}, macro F1 {tta['macro_f1']:.4f}, count RMSE {tta['rmse']:.4f}" in out
    # report on a single run folder redraws that run's figures
    (suite / "joint" / "figures" / "loss.png").unlink()
    assert main(["report", str(suite / "joint")]) == 0 and (suite / "joint" / "figures" / "loss.png").is_file()
    # report refuses an incomplete run folder and says what is missing
    (suite / "reg" / "confusion.csv").unlink()
    assert main(["report", str(suite)]) == 2
    assert "incomplete run folder, missing confusion.csv" in capsys.readouterr().err


def test_train_flags_reach_the_config(tmp_path):
    assert main(["train", "--synth", "--preset", "quick", "--setting", "reg", "--lam", "3", "--dropout", "0.1",
                 "--out", str(tmp_path), "--name", "r", *TINY]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["task"]["setting"] == "reg" and cfg["task"]["lam"] == 3.0 and cfg["model"]["dropout"] == 0.1
    assert cfg["train"]["early_stopping"]["monitor"] == "val_rmse"
    assert cfg["data"]["synth_n"] == 200 and cfg["train"]["epochs"] == 1


@pytest.mark.parametrize("args,fragment", [
    (["train", "--preset", "lab"], "needs --data"),
    (["train", "--synth", "--preset", "quick", "--lr", "-1"], "learning rate must be > 0"),
    (["train", "--synth", "--preset", "quick", "--patience", "-2"], "patience must be >= 0"),
    (["train", "--synth", "--preset", "quick", "--hflip", "2"], "hflip must be in [0, 1]"),
    (["train", "--data", "/nonexistent/gsn"], "/nonexistent/gsn: no such folder"),
    (["eval", "/nonexistent/run", "--data", "x"], "not a finished run folder"),
    (["data", "synth", "gsn", "--n", "10", "--min-count", "6"], "--min-count must be between 1 and 5"),
    (["data", "synth", "gsn", "--n", "0"], "--n must be at least 1"),
    (["train", "--synth", "--preset", "quick", "--head", "round"], "unknown head 'round'"),
    (["train", "--synth", "--preset", "quick", "--weight-average", "1"], "weight_average must be in [0, 1)"),
    (["train", "--synth", "--preset", "quick", "--precision", "fp16", "--device", "cpu"], "fp16 autocast is not supported"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, fragment):
    out_flag = ["--out", str(tmp_path / "out") if args[0] == "data" else str(tmp_path)]
    proc = run_cli(*args, *out_flag) if args[0] in ("train", "data") else run_cli(*args)
    assert proc.returncode != 0
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"train": {"lr": "fast"}}))
    proc = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "c.json: bad config file" in proc.stderr and "lr" in proc.stderr
    cfg.write_text(json.dumps({"trian": {}}))
    proc = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "unknown config key 'trian'" in proc.stderr
    cfg.write_text(json.dumps({"augment": {"hflip": 2}}))  # data show draws the augmentation a config names
    proc = run_cli("data", "show", "gsn", "--synth", "--config", str(cfg), "--out", str(tmp_path / "fig"))
    assert proc.returncode == 2 and "c.json: bad config file: augmentation probability hflip" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "fig").exists()


def test_parallel_suite_matches_sequential(tmp_path, capfd):
    """--jobs trains the settings in worker processes; each setting's result is the same as in a sequential suite,
    and each worker prints its run's epoch lines (and their legend, once) behind the run's label."""
    args = ["suite", "gsn", "--synth", "--preset", "quick", "--synth-n", "120", "--val-size", "40", "--epochs", "1",
            "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "seq")]) == 0
    capfd.readouterr()
    assert main([*args, "--out", str(tmp_path / "par"), "--jobs", "3"]) == 0
    out, err = capfd.readouterr()  # the workers' lines too: they write to the same file descriptors
    for setting, monitor in (("cls", "val_accuracy"), ("reg", "val_rmse"), ("joint", "val_accuracy")):
        lines = [line for line in out.splitlines() if line.startswith(f"[{setting}] epoch ")]
        assert len(lines) == 1 and lines[0].startswith(f"[{setting}] epoch 1/1 * ") and monitor in lines[0], out
        assert out.count(f"[{setting}] * = best {monitor} so far") == 1
    assert "\r" not in out and "\r" not in err
    for setting in ("cls", "reg", "joint"):
        seq = json.loads((tmp_path / "seq" / "gsn-suite-quick" / setting / "final_metrics.json").read_text())
        par = json.loads((tmp_path / "par" / "gsn-suite-quick" / setting / "final_metrics.json").read_text())
        assert seq["val"] == par["val"], setting
    assert (tmp_path / "par" / "gsn-suite-quick" / "report.html").is_file()


@pytest.mark.parametrize("kind", ["gsn", "fashion"])
def test_suite_refuses_jobs_below_one_before_creating_anything(tmp_path, capsys, kind):
    assert main(["suite", kind, "--jobs", "0", "--preset", "quick", "--out", str(tmp_path / "runs"),
                 *(["--synth"] if kind == "gsn" else ["--data", str(tmp_path / "no-data")])]) == 2
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("old, new", [
    (["train", "--synth"], ["train", "gsn", "--synth"]),
    (["--debug", "train", "--resume", "r"], ["--debug", "train", "gsn", "--resume", "r"]),
    (["fashion", "train", "--model", "gated-cnn"], ["train", "fashion-mnist", "--model", "gated-cnn"]),
    (["fashion", "suite"], ["suite", "fashion-mnist"]),
    (["fashion", "report", "s"], ["report", "s"]),
    (["suite", "fashion", "--jobs", "2"], ["suite", "fashion-mnist", "--jobs", "2"]),
    (["train", "kmnist"], ["train", "kmnist"]),
    (["train", "--help"], ["train", "--help"]),
])
def test_old_spellings_are_aliases_of_the_verb_first_commands(old, new):
    from lab28.cli import old_spellings

    assert old_spellings(old) == new
