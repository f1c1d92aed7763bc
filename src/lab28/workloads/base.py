"""The contract between the engine and a workload.

The engine (lab28.runs: run lifecycle, suites; lab28.training: the training loop) knows no workload. A workload
(GSN multitask shape counting, image classification on the MNIST family) supplies, through this protocol, only
what is specific to it: its data, its task (loss, metrics, batch preparation including normalisation,
decoding), its models and their output contract, the files a finished run holds besides the engine's, its
figures, and what its suite report says (the engine lays out and writes the page: lab28.runs.report).

What the engine guarantees in return: every setting is validated (`check_config`) before any folder exists; the
run folder is created, locked, marked running/failed/interrupted/finished and replaced safely by the engine
(lab28.runs.folder); config.json, env.json, data.json, metrics.csv, best.pt and last.pt are written by the engine;
the model is seeded with `config.train.seed` before `build_model` is called.

After training, the engine uses a finished run only through `load_predictor` (predictions on new images, the
`lab28 predict` CSV, `lab28.load(...).predict`) and `evaluate_run` (metrics on a labelled data folder); the
loading of best.pt itself is the engine's (lab28.runs.model.load_run_model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np
import torch

from lab28.errors import Lab28Error

if TYPE_CHECKING:
    from lab28.runs.report import ReportPage


@dataclass
class RunData:
    """A run's data as the trainer wants it, plus what the workload keeps for its own final evaluation.

    train/val: (inputs, targets) CPU tensors; inputs are N x 1 x 28 x 28 uint8 as stored in the data files (the
    task normalises them). description: what data.json records. source: the workload's own data objects.
    epoch_data: optional `epoch -> (inputs, targets)`, the training tensors of each epoch (the same number of
    images every epoch; it must give the same tensors for the same epoch, so that a resumed run repeats them);
    None trains every epoch on `train`. Validation, early stopping and best.pt always use `val`.
    extra_val: further labelled sets evaluated every epoch beside `val` and logged as `val_<name>_<metric>`
    (never monitored).
    """

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    description: dict
    source: Any = field(default=None, repr=False)
    epoch_data: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False)
    extra_val: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)


class EpochLogger(Protocol):
    """Optional per-run logging beside metrics.csv (TensorBoard, say)."""

    def epoch(self, row: dict) -> None: ...

    def finish(self, run_dir: Path, result: dict) -> None: ...

    def close(self) -> None: ...


class Predictor(Protocol):
    """A finished run's best weights, answering for new images (lab28.runs.predict, lab28.api.Model).

    Records are plain dicts, one per image, in input order; their keys are the workload's (see its predictor),
    always including `class` (int) and `class_name` (str), and `top_k`: [(class name, probability), ...] with the
    `top_k` most likely classes, best first.
    """

    columns: list[str]  # the CSV columns after "file", in the order `row` fills them
    top_k: int  # how many alternatives records and rows list (default 3)
    model: torch.nn.Module  # the underlying network, best weights, eval mode
    config: Any  # the run's config dataclass tree

    def read_png(self, path: Path) -> np.ndarray:
        """The 28 x 28 uint8 image of a PNG file, read the way this workload's data is (the channel it uses);
        one-line Lab28Error naming the file for anything else (not a regular file, another size, not a PNG)."""

    def predict(self, images: torch.Tensor) -> list[dict]:
        """One record per image of a uint8 or float tensor N x 28 x 28 or N x 1 x 28 x 28 holding values as in
        the data files (0..255). Normalisation (the task's prepare_batch) and decoding happen here."""

    def row(self, record: dict) -> list:
        """The CSV cells of one record, matching `columns`."""


class Workload(Protocol):
    """One kind of experiment. Implementations: lab28.workloads.gsn.workload, lab28.workloads.classify.workload."""

    name: str  # "gsn" | "classify": stored in every run's config.json as `workload`

    def config_from_dict(self, data: dict) -> Any:
        """The run config (a dataclass tree with .to_dict(), .validate(), .data, .train) from config.json."""

    def check_config(self, config) -> tuple[torch.device, str]:
        """Validate every value and resolve (device, precision) on this machine; one-line Lab28Error if bad."""

    def load_data(self, config) -> RunData:
        """Read (or generate) and split the data the config names. Lab28Error naming the file if it is bad."""

    def build_model(self, config) -> torch.nn.Module:
        """A model registered for this workload; its forward takes the task's prepared batch and returns the
        outputs the task's loss and metrics read (GSN: (log_probs, counts); classification: logits)."""

    def prepare_model(self, model: torch.nn.Module, config, data: RunData) -> None:
        """Data-dependent start weights from the training split only (a no-op for most models)."""

    def task(self, config) -> Any:
        """The task object the trainer drives: prepare_batch, loss, metrics (see lab28.training.trainer)."""

    def start_line(self, config, model: torch.nn.Module, data: RunData) -> str:
        """What the run prints about itself when it starts (setting/model, data sizes)."""

    def epoch_logger(self, run_dir: Path, config) -> EpochLogger | None:
        """Extra per-epoch logging for this run, or None."""

    def finalize(self, run_dir: Path, config, model: torch.nn.Module, task, data: RunData, summary: dict,
                 device: torch.device, precision: str) -> dict:
        """Evaluate the best weights (already loaded into `model`) and write the workload's own artefacts
        (final_metrics.json, confusion matrices, predictions, ...); returns the final metrics."""

    def draw_figures(self, run_dir: Path) -> None:
        """Figures of a finished run, drawn from its files alone."""

    # -- the suite report (laid out and written by lab28.runs.report.write_suite_report) -----------------------------
    def report_page(self, suite_dir: Path) -> ReportPage:
        """What the report of a suite folder of this workload's runs says: the runs, read and checked; the title; the
        summary (the best setting or model by the workload's headline metric, its key numbers, the chance level);
        the introduction (the data); the `##` sections. It may draw suite figures; it writes nothing else."""

    demo_preset: str  # the preset that is a small demonstration, not the experiment: a report of it says so

    def experiment_command(self, config: dict) -> str:
        """The command (Markdown) that runs the real experiment, for the banner of a report whose run (this
        config.json) used demo_preset."""

    # -- using a finished run ----------------------------------------------------------------------------------
    def load_predictor(self, run_dir: Path, device: str = "auto") -> Predictor:
        """The run's best weights and config as a Predictor on `device` ("auto": the best this machine has).
        One-line Lab28Error for a folder that is not a finished run of this workload, or a device it lacks."""

    def evaluate_run(self, run_dir: Path, data_dir: Path, out_path: Path | None = None, device: str = "auto",
                     tta: bool = False) -> tuple[Path, dict]:
        """Metrics of the run's best weights on a labelled data folder of this workload's format, written as JSON
        to out_path (default: RUN_DIR/eval-<data folder name>.json). Returns (that path, the JSON's content:
        `metrics` and, with tta, `metrics_tta`, besides what was evaluated). tta=True averages the model's answers
        over label-preserving views of each image, or is a one-line Lab28Error where the workload has none."""

    # -- presets for the Python API (lab28.api) -------------------------------------------------------------------
    main_preset: str  # what lab28.train uses when no preset is named
    preset_choices: dict[str, str]  # choices a preset is built around -> their config path (GSN: setting)

    def preset(self, name: str, **choices) -> Any:
        """The named preset's config; `choices` (names from preset_choices) shape it. Lab28Error for an unknown
        preset."""

    def use_data(self, config, preset: str, data: Path | None = None, synth: bool = False) -> None:
        """Point `config` at the data lab28.train was given: a folder (data), generated data (synth), or neither
        (the preset's default); one-line Lab28Error where that preset cannot run so."""



class ModuleWorkload:
    """What every workload does the same way: its figures, report, predictor and evaluation live in its own
    modules, named here and imported on first use (a run's report never loads the predictor's code)."""

    FIGURES_MODULE = ""  # draw_run_figures(run_dir)
    REPORT_MODULE = ""  # report_page(suite_dir) -> ReportPage
    PREDICT_MODULE = ""  # load_predictor(run_dir, device) -> Predictor
    EVALUATE_MODULE = ""  # evaluate_run(run_dir, data_dir, out_path=, device=, tta=) -> (Path, dict)

    def check_config(self, config):
        """(device, precision) for a valid config, else a one-line error (lab28.runs.config.check_run_config).
        The model is built on the side (the global random state is left as it was), so that an option the chosen
        model cannot take is refused before a run, suite or sweep makes its folder."""
        from lab28.runs.config import check_run_config

        device_precision = check_run_config(config)
        with torch.random.fork_rng(devices=[]):
            try:
                self.build_model(config)
            except ValueError as exc:
                raise Lab28Error(f"bad configuration: {exc}") from None
        return device_precision

    @staticmethod
    def _module(name: str):
        import importlib

        return importlib.import_module(name)

    def draw_figures(self, run_dir: Path) -> None:
        self._module(self.FIGURES_MODULE).draw_run_figures(run_dir)

    def report_page(self, suite_dir: Path):
        return self._module(self.REPORT_MODULE).report_page(suite_dir)

    def load_predictor(self, run_dir: Path, device: str = "auto"):
        return self._module(self.PREDICT_MODULE).load_predictor(run_dir, device)

    def evaluate_run(self, run_dir: Path, data_dir: Path, out_path: Path | None = None, device: str = "auto",
                     tta: bool = False) -> tuple[Path, dict]:
        return self._module(self.EVALUATE_MODULE).evaluate_run(run_dir, data_dir, out_path=out_path, device=device,
                                                               tta=tta)

    def make_preset(self, name: str, **choices):
        raise NotImplementedError

    def preset(self, name: str, **choices):
        """A preset config (`choices`: the workload's preset_choices, e.g. setting or model); an unknown preset
        name is a one-line error."""
        from lab28.errors import Lab28Error

        try:
            return self.make_preset(name, **choices)
        except ValueError as exc:
            raise Lab28Error(str(exc)) from None
