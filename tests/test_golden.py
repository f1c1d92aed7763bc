"""The refactors of lab28 change no numbers: two short runs repeat recorded per-epoch metrics.

The recordings in tests/golden/ hold the per-epoch metrics of two short CPU fp32 runs (GSN: lab preset, joint, one
thread, 600 synthetic images written in the real archive's format; Fashion-MNIST: quick preset on generated IDX
files), made by `python tests/test_golden.py`. A change that moves code must repeat them to the last digit; a change
that means to alter the numbers re-records them and says so in its commit.

Repeating a run to the last digit on another machine needs every kernel to do the same arithmetic in the same order
there. Each run therefore goes in a process of its own (KERNEL_PINS, read when torch and MKL load) with:
- torch's own kernels held to AVX2, which every x86-64 CPU of the last decade runs, whatever wider units it has;
- MKL, which does the matrix products, in its reproducible mode MKL_CBWR=COMPATIBLE,STRICT: the same results on any
  x86 CPU, Intel or not (left free, MKL picks AVX512 or AMX code where it finds them, and the last digits move);
- oneDNN and NNPACK off (`_hold_convolutions`): both choose their convolution code by the CPU they find, so the
  convolutions go through torch's own im2col and MKL's matrix product instead.
A CPU without AVX2 (another architecture) skips the test: its arithmetic differs, and over three epochs a last-digit
difference grows into a flipped validation prediction, so no tolerance is both safe there and tight enough to catch a
changed number. So does another torch version, whose kernels may differ.
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
    # The recording reads the counts from the count head and the class from the class head, over a 0.99 weight
    # average (the readouts and the average change the metrics only, never the training: tests/test_metrics.py
    # covers the readouts, tests/test_weight_average.py the average).
    assert main(["train", "--data", str(tmp / "gsn"), "--preset", "lab", "--setting", "joint", "--val-size", "100",
                 "--epochs", "3", "--threads", "1", "--precision", "fp32", "--device", "cpu",
                 "--count-readout", "setting", "--class-readout-weight", "0", "--weight-average", "0.99",
                 "--out", str(tmp / "runs"), "--name", "gsn"]) == 0
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


# What a run's process is held to, read when torch and MKL load (see the module docstring).
KERNEL_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT"}
PINNED_CAPABILITY = "AVX2"


def _hold_convolutions() -> None:
    """Convolutions by torch's own im2col and MKL's matrix product: oneDNN and NNPACK pick kernels by the CPU."""
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


def _recorded_run(name: str, out: Path) -> dict:
    """One run of `name` in this process (started with KERNEL_PINS) and what a recording holds of it."""
    _hold_convolutions()
    rows = _metrics(RUNS[name](out))
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "kernel_pins": KERNEL_PINS, "epochs": rows}


def _pinned_run(name: str, tmp: Path) -> dict:
    """`name` run in a fresh process held to KERNEL_PINS."""
    result = tmp / "result.json"
    done = subprocess.run([sys.executable, __file__, "--run", name, str(tmp), str(result)],
                          env={**os.environ, **KERNEL_PINS}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(result.read_text())


def _base_version(version: str) -> str:
    return version.split("+")[0]  # 2.13.0+cpu and a CUDA build of 2.13.0 share their CPU kernels


@pytest.mark.parametrize("name", sorted(RUNS))
def test_per_epoch_metrics_repeat_the_recording(name, tmp_path):
    recording = json.loads((GOLDEN / f"{name}.json").read_text())
    assert recording["kernel_pins"] == KERNEL_PINS, "the recording was made under other pins: re-record it"
    if torch.backends.cpu.get_cpu_capability() not in (PINNED_CAPABILITY, "AVX512"):
        pytest.skip(f"this CPU cannot run the {PINNED_CAPABILITY} kernels the recording was made with")
    if _base_version(torch.__version__) != _base_version(recording["torch"]):
        pytest.skip(f"recorded with torch {recording['torch']}, whose kernels may differ from {torch.__version__}'s")
    run = _pinned_run(name, tmp_path)
    assert run["cpu_capability"] == PINNED_CAPABILITY, f"the run was not held to {PINNED_CAPABILITY} kernels"
    got = run["epochs"]
    assert len(got) == len(recording["epochs"]) == 3
    assert [sorted(r) for r in got] == [sorted(r) for r in recording["epochs"]]
    assert got == recording["epochs"]


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:2] == ["--run"]:  # one run for the test: --run NAME DIR RESULT_JSON
        name, out, result = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        result.write_text(json.dumps(_recorded_run(name, out)))
    else:  # re-record (only with the code whose numbers are to be kept)
        for name in RUNS:
            with tempfile.TemporaryDirectory() as tmp:
                record = _pinned_run(name, Path(tmp))
            (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
            print(f"recorded {name}: {len(record['epochs'])} epochs")
