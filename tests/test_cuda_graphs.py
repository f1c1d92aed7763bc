"""The CUDA-graph training step computes what the eager step computes (CUDA; skipped elsewhere), and the
settings it needs never leak into a run without graphs (every device).

Each test trains the same tiny run twice from the same seed, once replayed from a captured graph and once eagerly,
and compares the per-epoch losses: a frozen learning rate, augmentation that repeats the captured random draws,
or a lost gradient would each pull the two apart within a few epochs. The sets leave a short last batch, which
runs eagerly after the capture.
"""

import pytest
import torch

from lab28.training.step import graphs_supported
from lab28.training.trainer import fit

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")

# The two paths launch the same kernels, but cuDNN's backward passes sum in no fixed order: allow drift.
REL = 2e-3


def _fit_gsn(tmp_path, graphs: bool, fresh_epochs: bool = False, **train):
    from lab28.workloads.gsn.config import preset
    from lab28.workloads.gsn.experiment import build_model, load_data
    from lab28.workloads.gsn.task import GSNTask

    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 64 * 6 + 10 + 64, 64
    cfg.model.dropout = 0.3
    cfg.train.epochs, cfg.train.progress, cfg.train.device, cfg.train.precision = 4, False, "cuda", "fp32"
    cfg.train.cuda_graphs = graphs
    cfg.train.early_stopping.patience = 10
    for key, value in train.items():
        setattr(cfg.train, key, value)
    train_set, val = load_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    run_dir = tmp_path / ("graph" if graphs else "eager")
    run_dir.mkdir()
    epoch_data = None
    if fresh_epochs:  # the synthetic track's source: new images every epoch, copied into the captured tensors
        from lab28.workloads.gsn.synthetic_track import SyntheticEpochs

        epoch_data = SyntheticEpochs(train_set, len(train_set), 0.0, cfg.train.seed, cfg.data.synth_seed)
    return fit(model, GSNTask(cfg.task, cfg.augment), (train_set.images, train_set.counts),
               (val.images, val.counts), cfg.train, run_dir, epoch_data=epoch_data)


def _assert_same_run(graph: dict, eager: dict) -> None:
    assert graph["cuda_graphs"] and not eager["cuda_graphs"]
    for g, e in zip(graph["history"], eager["history"], strict=True):
        assert g["lr"] == pytest.approx(e["lr"], rel=1e-6)
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=REL)
        assert g["val_loss"] == pytest.approx(e["val_loss"], rel=REL)
    assert graph["history"][-1]["train_loss"] < 0.9 * graph["history"][0]["train_loss"]


@needs_cuda
def test_gsn_graph_step_matches_eager_step(tmp_path):
    _assert_same_run(_fit_gsn(tmp_path, True), _fit_gsn(tmp_path, False))


@needs_cuda
def test_graph_step_trains_on_each_epochs_fresh_data(tmp_path):
    _assert_same_run(_fit_gsn(tmp_path, True, fresh_epochs=True), _fit_gsn(tmp_path, False, fresh_epochs=True))


def test_new_epoch_data_is_copied_into_the_tensors_a_graph_captured():
    """On any device: before capture the step runner takes the new tensors as they are; after it, it copies them
    into the captured ones (a replay reads those) and refuses another shape."""
    from types import SimpleNamespace

    from lab28.training.step import TrainStep

    x, y = torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4, 6, dtype=torch.long)
    step = TrainStep(None, None, None, None, x, y, None, SimpleNamespace(), torch.device("cpu"), "fp32")
    new_x, new_y = torch.ones_like(x), torch.ones_like(y)
    step.set_train_data(new_x, new_y)
    assert step.train_x is new_x and step.train_y is new_y
    step.graph = object()  # as if captured: the tensors must stay the same objects
    captured = step.train_x
    step.set_train_data(torch.full_like(x, 2), torch.full_like(y, 2))
    assert step.train_x is captured and (captured == 2).all() and (step.train_y == 2).all()
    with pytest.raises(ValueError, match="do not fit the captured ones"):
        step.set_train_data(torch.zeros(5, 1, 28, 28, dtype=torch.uint8), torch.zeros(5, 6, dtype=torch.long))


@needs_cuda
def test_graph_step_follows_the_learning_rate_schedule(tmp_path):
    graph = _fit_gsn(tmp_path, True, scheduler="cosine", warmup_epochs=1.0)
    eager = _fit_gsn(tmp_path, False, scheduler="cosine", warmup_epochs=1.0)
    _assert_same_run(graph, eager)
    assert len({row["lr"] for row in graph["history"]}) == len(graph["history"])  # it really moved


@needs_cuda
@pytest.mark.parametrize("cutmix", [0.0, 0.5])
def test_fashion_graph_step_with_shifts_and_erasing_matches_eager(tmp_path, cutmix):
    from lab28.workloads.classify.config import preset
    from lab28.workloads.classify.experiment import build_model
    from lab28.workloads.classify.task import FashionTask

    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (64 * 5 + 20,), generator=gen)
    images = (torch.rand(len(labels), 1, 28, 28, generator=gen) * 60).to(torch.uint8)
    images[torch.arange(len(labels)), 0, 2 + 2 * labels, 4:24] = 255  # a bar whose row gives the class
    runs = {}
    for graphs in (True, False):
        cfg = preset("best", "simple-cnn")
        cfg.train.epochs, cfg.train.progress, cfg.train.device, cfg.train.precision = 4, False, "cuda", "fp32"
        cfg.train.batch_size, cfg.train.cuda_graphs, cfg.augment.cutmix = 64, graphs, cutmix
        torch.manual_seed(1)
        run_dir = tmp_path / str(graphs)
        run_dir.mkdir()
        runs[graphs] = fit(build_model(cfg), FashionTask(cfg.task, cfg.augment), (images[:300], labels[:300]),
                           (images[300:], labels[300:]), cfg.train, run_dir)
    _assert_same_run(runs[True], runs[False])


@needs_cuda
def test_bf16_graph_step_trains(tmp_path):
    summary = _fit_gsn(tmp_path, True, precision="bf16")
    assert summary["cuda_graphs"] and summary["precision"] == "bf16"
    assert summary["history"][-1]["train_loss"] < 0.9 * summary["history"][0]["train_loss"]


def test_graphs_are_not_used_where_they_cannot_be():
    from lab28.training.config import TrainConfig

    cuda, on = torch.device("cuda"), TrainConfig(cuda_graphs=True)
    assert graphs_supported(on, cuda, "bf16")
    assert not graphs_supported(on, cuda, "fp16")  # the grad scaler decides on the host
    assert not graphs_supported(TrainConfig(cuda_graphs=True, compile=True), cuda, "bf16")
    assert not graphs_supported(TrainConfig(), cuda, "bf16")  # opt-in
    assert not graphs_supported(on, torch.device("cpu"), "fp32")


def test_a_state_saved_with_graphs_resumes_without_them():
    """A checkpoint from a GPU run (capturable, learning rate as a device tensor) continues on the CPU."""
    from lab28.training.config import TrainConfig
    from lab28.training.optim import make_optimizer, set_graph_mode

    cpu = torch.device("cpu")
    model = torch.nn.Linear(3, 2)
    saved = make_optimizer(model, TrainConfig(lr=0.01), cpu).state_dict()
    saved["param_groups"][0].update(lr=torch.tensor(0.01, dtype=torch.float64), capturable=True)
    optimizer = make_optimizer(model, TrainConfig(lr=0.01), cpu)
    optimizer.load_state_dict(saved)
    set_graph_mode(optimizer, False, cpu)
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.01 and isinstance(group["lr"], float) and group["capturable"] is False
    before = model.weight.detach().clone()
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    assert not torch.equal(model.weight, before)
