"""The refactors of lab28 change no numbers: two short runs repeat recorded per-epoch metrics.

The recordings in tests/golden/ were made by `python tests/test_golden.py` before the code they guard was moved
(GSN: lab preset, joint, CPU fp32, one thread, 600 synthetic images written in the real archive's format;
Fashion-MNIST: quick preset on generated IDX files). A run's last digits depend on the kernels torch and oneDNN
pick for the CPU (torch's CPU capability, e.g. AVX2): each run therefore goes in its own process, held to the
recording's kind of kernels where the CPU has them (an AVX512 CPU runs AVX2 kernels), and must then agree to the
last digit. A CPU that cannot run them (another architecture) may round differently, so there the runs must agree
to 1e-5.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
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


# The environment that holds a process to a kind of kernels: torch's own (ATEN_CPU_CAPABILITY) and oneDNN's, which
# runs the convolutions (ONEDNN_MAX_CPU_ISA). Both are read when torch loads, hence a process per run.
KERNEL_PINS = {"AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
# The CPU capabilities that include a recorded one.
INCLUDED_BY = {kind: ("AVX2", "AVX512") for kind in KERNEL_PINS}


def _recorded_run(name: str, out: Path) -> dict:
    """One run of `name` (in the process the test starts for it) and what a recording holds of it."""
    rows = _metrics(RUNS[name](out))
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__, "epochs": rows}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_per_epoch_metrics_repeat_the_recording(name, tmp_path):
    recording = json.loads((GOLDEN / f"{name}.json").read_text())
    recorded_kind = recording["cpu_capability"]
    env = dict(os.environ)
    held = torch.backends.cpu.get_cpu_capability() in INCLUDED_BY.get(recorded_kind, ())
    if held:
        env.update(KERNEL_PINS[recorded_kind])
    result = tmp_path / "result.json"
    done = subprocess.run([sys.executable, __file__, "--run", name, str(tmp_path), str(result)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(result.read_text())
    got = run["epochs"]
    assert len(got) == len(recording["epochs"]) == 3
    assert [sorted(r) for r in got] == [sorted(r) for r in recording["epochs"]]
    if run["cpu_capability"] == recorded_kind:
        assert got == recording["epochs"]
    else:
        assert not held, f"the run was to be held to {recorded_kind} kernels but ran {run['cpu_capability']}"
        for row, want in zip(got, recording["epochs"]):
            for key, value in want.items():
                assert float(row[key]) == pytest.approx(float(value), rel=1e-5, abs=1e-7), key


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:2] == ["--run"]:  # one run for the test: --run NAME DIR RESULT_JSON
        name, out, result = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        result.write_text(json.dumps(_recorded_run(name, out)))
    else:  # re-record (only with the code whose numbers are to be kept)
        for name in RUNS:
            with tempfile.TemporaryDirectory() as tmp:
                record = _recorded_run(name, Path(tmp))
            (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
            print(f"recorded {name}: {len(record['epochs'])} epochs")
