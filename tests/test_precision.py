"""Every precision mode trains a few steps on the CPU, and `auto` falls back to fp32 where bf16 is not native."""

import pytest
import torch

from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import run_gsn
from lab28.training import device as D


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_modes_train_on_cpu(tmp_path, precision):
    # bf16 autocast runs on every CPU (emulated where there are no bf16 units: slow, but it must work).
    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 96, 32
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress, cfg.train.threads = 1, 32, False, 1
    cfg.train.precision, cfg.train.device = precision, "cpu"
    run = run_gsn(cfg, tmp_path, precision, draw_figures=False)
    import json

    final = json.loads((run / "final_metrics.json").read_text())
    assert final["precision"] == precision and final["val"]["loss"] == final["val"]["loss"]  # not NaN
    assert json.loads((run / "env.json").read_text())["precision"] == precision


def test_auto_falls_back_to_fp32_without_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(D, "cpu_has_fast_bf16", lambda: False)
    assert D.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(D, "cpu_has_fast_bf16", lambda: True)
    assert D.resolve_precision("auto", cpu) == "bf16"
    assert D.resolve_precision("fp32", cpu) == "fp32"


def test_fp16_on_cpu_and_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="fp16"):
        D.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        D.resolve_precision("int8", torch.device("cpu"))


def test_autocast_context_matches_precision():
    cpu = torch.device("cpu")
    with D.autocast(cpu, "bf16"):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    with D.autocast(cpu, "fp32"):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.float32
