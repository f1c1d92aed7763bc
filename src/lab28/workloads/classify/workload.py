"""The image-classification workload (the MNIST family) as the engine sees it (lab28.workloads.base.Workload)."""

from __future__ import annotations

from pathlib import Path

from lab28.errors import Lab28Error
from lab28.models.registry import count_parameters
from lab28.workloads.base import ModuleWorkload, RunData
from lab28.workloads.classify import experiment
from lab28.workloads.classify.config import config_from_dict, preset as config_preset
from lab28.workloads.classify.data import DEFAULT_DATASET, FashionSplits, load_fashion
from lab28.workloads.classify.task import FashionTask


def run_data(splits: FashionSplits) -> RunData:
    return RunData((splits.train.images, splits.train.labels), (splits.val.images, splits.val.labels),
                   splits.describe(), source=splits)


class TensorBoardLogger:
    """metrics.csv's rows as TensorBoard scalars; at the end the prediction grid, the confusion matrix, hparams."""

    def __init__(self, board: experiment.TensorBoardLog, config):
        self.board, self.config = board, config

    def epoch(self, row: dict) -> None:
        self.board.epoch(row)

    def finish(self, run_dir: Path, result: dict) -> None:
        step = int(result["best_epoch"] or 0)
        for tag, name in (("predictions/val", "predictions.png"), ("confusion/val", "confusion.png")):
            if (run_dir / "figures" / name).exists():
                self.board.image(tag, run_dir / "figures" / name, step)
        metrics = {"val_accuracy": result["val"]["accuracy"], "val_macro_f1": result["val"]["macro_f1"]}
        if result["test"] is not None:
            metrics["test_accuracy"] = result["test"]["accuracy"]
        self.board.hparams(self.config, metrics)

    def close(self) -> None:
        self.board.close()


class ClassifyWorkload(ModuleWorkload):
    FIGURES_MODULE = "lab28.workloads.classify.report"
    REPORT_MODULE = "lab28.workloads.classify.report"
    PREDICT_MODULE = "lab28.workloads.classify.predict"
    EVALUATE_MODULE = "lab28.workloads.classify.predict"

    name = "classify"
    main_preset = "best"
    preset_choices = {"model": "model.name"}

    def config_from_dict(self, data: dict):
        return config_from_dict(data)

    def load_data(self, config) -> RunData:
        return run_data(load_fashion(config.data))

    def build_model(self, config):
        return experiment.build_model(config)

    def prepare_model(self, model, config, data: RunData) -> None:
        pass  # no data-dependent start weights

    def task(self, config) -> FashionTask:
        return FashionTask(config.task, config.augment, config.data.dataset)

    def start_line(self, config, model, data: RunData) -> str:
        splits = data.source
        test = len(splits.test) if splits.test is not None else "none"
        return (f"model={config.model.name} ({count_parameters(model):,} parameters) train={len(splits.train)} "
                f"val={len(splits.val)} test={test}")

    def epoch_logger(self, run_dir: Path, config):
        if not config.tensorboard:
            return None
        board = experiment.TensorBoardLog.open(run_dir / "tensorboard")
        return TensorBoardLogger(board, config) if board is not None else None

    def finalize(self, run_dir, config, model, task, data: RunData, summary, device, precision) -> dict:
        summary = {**summary, "params": count_parameters(model)}
        return experiment.finalize_run(run_dir, config, model, task, data.source, summary, device, precision)

    def make_preset(self, name: str, model: str | None = None):
        return config_preset(name, model)

    demo_preset = "quick"

    def experiment_command(self, config: dict) -> str:
        data = config.get("data")
        dataset = data.get("dataset", DEFAULT_DATASET) if isinstance(data, dict) else DEFAULT_DATASET
        return f"`lab28 suite {dataset} --preset best`"

    def use_data(self, config, preset: str, data: Path | None = None, synth: bool = False) -> None:
        if synth:
            raise Lab28Error("there is no synthetic image-classification data; give data=DIR (IDX files) or leave "
                             "it out to use the cache (`lab28 data fetch fashion-mnist`)")
        if data is not None:
            config.data.path = str(data)


WORKLOAD = ClassifyWorkload()
