"""The refactors of lab28 change no numbers: two short runs repeat recorded per-epoch metrics.

The recordings in tests/golden/ were made by `python tests/test_golden.py` before the code they guard was moved
(GSN: lab preset, joint, CPU fp32, one thread, 600 synthetic images written in the real archive's format;
Fashion-MNIST: quick preset on generated IDX files). On a CPU of the recording's kind (torch's CPU capability,
e.g. AVX2) they must agree to the last digit; another kind of CPU may round differently inside its kernels, so
there they must agree to 1e-5.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).parent / "golden"
SKIP_COLUMNS = ("time", "per_s")  # wall-clock columns


def _gsn_run(tmp: Path) -> Path:
    from lab28.cli import main
    from lab28.workloads.gsn.synth import synth_gsn

    synth_gsn(tmp / "gsn", n=600, seed=11)
    # The recording read the counts from the count head, as the lab preset did then (the count readout changes
    # the count metrics only, never the training: tests/test_metrics.py covers the posterior readout).
    assert main(["train", "--data", str(tmp / "gsn"), "--preset", "lab", "--setting", "joint", "--val-size", "100",
                 "--epochs", "3", "--threads", "1", "--precision", "fp32", "--device", "cpu",
                 "--count-readout", "setting", "--out", str(tmp / "runs"), "--name", "gsn"]) == 0
    return tmp / "runs" / "gsn" / "metrics.csv"


def _fashion_run(tmp: Path) -> Path:
    from lab28.cli import main

    sys.path.insert(0, str(Path(__file__).parent))
    from test_fashion import write_fashion

    (tmp / "fashion").mkdir()
    write_fashion(tmp / "fashion", n_train=300, n_test=60, seed=5)
    assert main(["fashion", "train", "--preset", "quick", "--data", str(tmp / "fashion"), "--val-size", "60",
                 "--epochs", "3", "--threads", "1", "--precision", "fp32", "--device", "cpu", "--tensorboard", "false",
                 "--out", str(tmp / "runs"), "--name", "fashion"]) == 0
    return tmp / "runs" / "fashion" / "metrics.csv"


RUNS = {"gsn-lab-joint": _gsn_run, "fashion-quick": _fashion_run}


def _metrics(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(path, newline="")))
    return [{k: v for k, v in row.items() if not any(s in k for s in SKIP_COLUMNS)} for row in rows]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_per_epoch_metrics_repeat_the_recording(name, tmp_path):
    recording = json.loads((GOLDEN / f"{name}.json").read_text())
    got = _metrics(RUNS[name](tmp_path))
    assert len(got) == len(recording["epochs"]) == 3
    assert [sorted(r) for r in got] == [sorted(r) for r in recording["epochs"]]
    if torch.backends.cpu.get_cpu_capability() == recording["cpu_capability"]:
        assert got == recording["epochs"]
    else:
        for row, want in zip(got, recording["epochs"]):
            for key, value in want.items():
                assert float(row[key]) == pytest.approx(float(value), rel=1e-5, abs=1e-7), key


if __name__ == "__main__":  # re-record (only with the code whose numbers are to be kept)
    import tempfile

    for name, run in RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            rows = _metrics(run(Path(tmp)))
        record = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
                  "epochs": rows}
        (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded {name}: {len(rows)} epochs")
