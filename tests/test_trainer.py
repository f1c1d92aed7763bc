"""A short training run on a tiny synthetic set: the loss really drops, and the run folder is complete."""

import json

import pytest
import torch

from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import run_gsn


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 320, 64
    cfg.train.epochs, cfg.train.progress, cfg.train.batch_size = 4, False, 16
    cfg.model.dropout = 0.0
    cfg.augment.hflip = cfg.augment.vflip = cfg.augment.rot90 = 0.0  # fit the tiny set fast; aug is tested apart
    cfg.train.early_stopping.patience = 10
    out = tmp_path_factory.mktemp("runs")
    return run_gsn(cfg, out, "joint"), cfg, out


def test_loss_drops_and_folder_is_complete(tiny_run):
    run_dir, _, _ = tiny_run
    import csv

    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert len(rows) == 4
    train_loss = [float(r["train_loss"]) for r in rows]
    assert train_loss[-1] < 0.8 * train_loss[0]
    for name in ("config.json", "env.json", "best.pt", "final_metrics.json", "confusion.csv",
                 "activation_rates.csv", "val_predictions.csv", "figures/loss.png", "figures/confusion_classes.png",
                 "figures/dead_neurons.png", "figures/misclassified_pairs.png"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "last.pt").exists()
    final = json.loads((run_dir / "final_metrics.json").read_text())
    assert final["epochs_run"] == 4 and 1 <= final["best_epoch"] <= 4
    assert 0 <= final["val"]["accuracy"] <= 1 and final["dead_feature_count"] <= 256
    assert 100 < final["peak_rss_mb"] < 100_000  # the run's own peak memory (MB), recorded with it
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["torch_version"] == torch.__version__ and env["precision"] in ("fp32", "bf16")


def test_run_saves_its_grid_samples_and_draws_them(tiny_run, tmp_path):
    """prediction_samples.npz agrees with val_predictions.csv, and figures/ holds the grid and augmentation figures;
    a run folder from before the samples file still gets its other figures."""
    import csv
    import shutil

    import numpy as np

    from lab28.runs.samples import read_samples
    from lab28.workloads.gsn.figures import SAMPLE_COLUMNS, SAMPLE_FIGURES, draw_run_figures
    from lab28.workloads.gsn.labels import encode_counts

    run_dir, _, _ = tiny_run
    samples = read_samples(run_dir / "prediction_samples.npz", SAMPLE_COLUMNS)
    rows = list(csv.DictReader(open(run_dir / "val_predictions.csv")))
    index = samples["val_index"]
    assert 8 <= len(index) <= 8 + 24 and len(rows) == 64
    assert [int(rows[i]["true_class"]) for i in index] == samples["true"].tolist()
    assert [int(rows[i]["pred_class"]) for i in index] == samples["pred"].tolist()
    assert encode_counts(torch.from_numpy(samples["true_counts"])).tolist() == samples["true"].tolist()
    wrong = sum(r["true_class"] != r["pred_class"] for r in rows)
    assert int((samples["true"] != samples["pred"]).sum()) >= min(wrong, 24)  # mistakes are over-sampled
    for name, _ in SAMPLE_FIGURES:
        assert (run_dir / "figures" / name).stat().st_size > 5000, name

    old = shutil.copytree(run_dir, tmp_path / "old")
    (old / "prediction_samples.npz").unlink()
    shutil.rmtree(old / "figures")
    drawn = {p.name for p in draw_run_figures(old)}
    assert "loss.png" in drawn and not drawn & {name for name, _ in SAMPLE_FIGURES}
    assert np.array_equal(np.sort(index), index)


def test_same_name_never_overwrites(tiny_run):
    run_dir, cfg, out = tiny_run
    cfg.train.epochs = 1
    second = run_gsn(cfg, out, "joint")
    assert second.name == "joint-2" and run_dir.exists()


def test_best_checkpoint_matches_final_metrics(tiny_run):
    from lab28.workloads.gsn.evaluate import load_run_model
    from lab28.workloads.gsn.experiment import load_data
    from lab28.workloads.gsn.task import GSNTask
    from lab28.training.trainer import evaluate

    run_dir, cfg, _ = tiny_run
    model, config = load_run_model(run_dir, torch.device("cpu"))
    _, val = load_data(config)
    final = json.loads((run_dir / "final_metrics.json").read_text())
    # In the precision the run evaluated in: `auto` is bf16 on a CPU with bf16 units.
    metrics = evaluate(model, GSNTask(config.task), val.images, val.counts, config.train, torch.device("cpu"),
                       final["precision"])
    assert metrics["accuracy"] == pytest.approx(final["val"]["accuracy"])
    assert metrics["rmse"] == pytest.approx(final["val"]["rmse"], rel=1e-5)


@pytest.mark.parametrize("n, batch, steps", [(64, 16, 4), (65, 16, 4), (66, 16, 5), (1, 16, 1), (17, 16, 1),
                                             (8000, 64, 125)])
def test_steps_per_epoch_skips_only_a_lone_last_image(n, batch, steps):
    from lab28.training.trainer import steps_per_epoch

    assert steps_per_epoch(n, batch) == steps


def test_batchnorm_head_trains_on_a_set_with_a_lone_last_image(tmp_path):
    """65 training images at batch 16 would leave a last batch of one, which BatchNorm1d refuses in training."""
    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 65 + 32, 32
    cfg.model.batchnorm = True
    cfg.train.epochs, cfg.train.progress, cfg.train.batch_size, cfg.train.threads = 2, False, 16, 1
    run_dir = run_gsn(cfg, tmp_path, "bn", draw_figures=False)
    import csv

    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert len(rows) == 2 and all(float(r["train_loss"]) > 0 for r in rows)
    saved = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=False)
    state = saved.get("model", saved)
    assert "norm.running_mean" in state  # the BatchNorm is in the saved heads
    assert json.loads((run_dir / "config.json").read_text())["model"]["batchnorm"] is True


@pytest.mark.parametrize("options", [{"head": "flat"}, {"hidden": 64, "dropout": 0.5}, {"batchnorm": True},
                                     {"head": "flat", "hidden": 32, "batchnorm": True}])
def test_head_options_leave_the_protocol_backbone_alone(options):
    """Head options change the heads only: the backbone has the protocol's layers, shapes and names."""
    from lab28.models import create_model

    reference = {k: v.shape for k, v in create_model("shape-classifier").backbone.state_dict().items()}
    model = create_model("shape-classifier", **options).eval()
    assert {k: v.shape for k, v in model.backbone.state_dict().items()} == reference
    log_probs, counts = model(torch.randn(5, 1, 28, 28))
    assert log_probs.shape == (5, 135) and counts.shape == (5, 6)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(5), atol=1e-5)


def test_a_negative_hidden_width_is_refused():
    from lab28.models import create_model

    with pytest.raises(ValueError, match="hidden"):
        create_model("shape-classifier", hidden=-1)


def _normalised_synthetic_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    from lab28.workloads.gsn.synth import generate
    from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig

    images, counts = generate(n, seed=seed)
    images, counts = torch.from_numpy(images).unsqueeze(1), torch.from_numpy(counts).long()
    return GSNTask(GSNTaskConfig()).prepare_batch(images, counts, train=False)[0], images


def _pre_activations(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.backbone.fc[1](model.backbone.convs(x).flatten(1))


@pytest.mark.parametrize("fc_init,reference", [("centered", "default"), ("pooled-centered", "pooled")])
def test_centered_start_gives_every_unit_a_centred_unit_spread_on_the_images_it_saw(fc_init, reference):
    """The problem it mends: at the default start a unit's pre-activation hardly varies between images."""
    from lab28.models import create_model

    x, _ = _normalised_synthetic_images(96)
    torch.manual_seed(0)
    default = create_model("shape-classifier", fc_init=reference)
    torch.manual_seed(0)
    centered = create_model("shape-classifier", fc_init=fc_init)
    assert _pre_activations(default, x).std(0).mean() < 0.05  # same weights until init_from_data
    centered.init_from_data(x)
    pre = _pre_activations(centered, x)
    assert pre.mean(0).abs().max() < 1e-3
    assert torch.allclose(pre.std(0), torch.ones(256), atol=1e-3)
    assert torch.equal(centered.backbone.fc[1].bias, torch.zeros(256))
    # Only the big Linear moves: convolutions and heads keep their seeded start; the layers are the protocol's.
    for name, value in default.state_dict().items():
        if not name.startswith("backbone.fc."):
            assert torch.equal(value, centered.state_dict()[name]), name
    shapes = {k: v.shape for k, v in default.state_dict().items()}
    assert {k: v.shape for k, v in centered.state_dict().items()} == shapes
    # Images it did not see are centred too (not exactly): about half of them make each unit fire.
    unseen, _ = _normalised_synthetic_images(96, seed=1)
    assert 0.3 < (_pre_activations(centered, unseen) > 0).float().mean() < 0.7


def test_init_from_data_is_a_no_op_for_the_other_starts():
    from lab28.models import create_model

    x, _ = _normalised_synthetic_images(16)
    for fc_init in ("default", "pooled"):
        model = create_model("shape-classifier", fc_init=fc_init)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.init_from_data(x)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), fc_init
    with pytest.raises(ValueError, match="centered"):
        create_model("shape-classifier", fc_init="centred")


def test_a_run_starts_from_its_first_training_images_only(tmp_path, monkeypatch):
    """run_gsn's start reads the first 512 training images: never the validation split."""
    from lab28.workloads.gsn.experiment import build_model, init_from_training_data, load_data

    cfg = preset("lab", "joint")  # the lab backbone: its big Linear is what the centred start sets
    cfg.data.synth_n, cfg.data.val_size, cfg.model.fc_init = 700, 100, "centered"
    train, val = load_data(cfg)
    torch.manual_seed(1)
    model = build_model(cfg)
    init_from_training_data(model, cfg, train)
    x, _ = _normalised_synthetic_images(700)
    first = _pre_activations(model, x[:512])
    assert first.mean(0).abs().max() < 1e-3 and torch.allclose(first.std(0), torch.ones(256), atol=1e-3)
    assert not torch.allclose(_pre_activations(model, x[600:]).std(0), torch.ones(256), atol=1e-3)
    # ... and run_gsn itself applies that start before training.
    import lab28.runs.lifecycle as lifecycle
    from lab28.workloads.gsn.experiment import run_gsn

    started = {}
    monkeypatch.setattr(lifecycle, "_train_and_finalize",
                        lambda workload, run_dir, config, model, *a, **k: started.setdefault("model", model))
    run_gsn(cfg, tmp_path, "centered", draw_figures=False, data=(train, val))
    assert torch.equal(started["model"].backbone.fc[1].weight, model.backbone.fc[1].weight)
