"""The GSN multitask workload as the engine sees it (lab28.workloads.base.Workload)."""

from __future__ import annotations

from pathlib import Path

from lab28.errors import Lab28Error
from lab28.workloads.base import ModuleWorkload, RunData
from lab28.workloads.gsn import experiment
from lab28.workloads.gsn.config import PRESETS_NEEDING_DATA, config_from_dict, preset as config_preset
from lab28.workloads.gsn.loader import GSNData
from lab28.workloads.gsn.synthetic_track import SYNTH_VAL_NAME, SyntheticEpochs, synthetic_validation, track_words
from lab28.workloads.gsn.task import GSNTask


def run_data(train: GSNData, val: GSNData, config=None) -> RunData:
    """The engine's view of the split; on the synthetic track (config.data.track) with each epoch's fresh images
    and the fixed synthetic set for the sim-to-real gap (lab28.workloads.gsn.synthetic_track)."""
    data = RunData((train.images, train.counts), (val.images, val.counts),
                   {"source": train.source, "train_size": len(train), "val_size": len(val),
                    "val_first": val.names[0], "val_last": val.names[-1]}, source=(train, val))
    if config is not None and config.data.track == "synthetic":
        dc = config.data
        data.epoch_data = SyntheticEpochs(train, dc.synth_per_epoch, dc.real_fraction, config.train.seed,
                                          dc.synth_seed)
        data.extra_val = {SYNTH_VAL_NAME: synthetic_validation(dc.synth_val_size, dc.synth_seed)}
        data.description.update(track=dc.track, synth_per_epoch=dc.synth_per_epoch, real_fraction=dc.real_fraction,
                                synth_val_size=dc.synth_val_size)
    return data


class GSNWorkload(ModuleWorkload):
    FIGURES_MODULE = "lab28.workloads.gsn.figures"
    REPORT_MODULE = "lab28.workloads.gsn.report"
    PREDICT_MODULE = "lab28.workloads.gsn.predict"
    EVALUATE_MODULE = "lab28.workloads.gsn.evaluate"

    name = "gsn"
    main_preset = "lab"
    preset_choices = {"setting": "task.setting"}  # the preset picks early stopping's monitor from the setting

    def config_from_dict(self, data: dict):
        return config_from_dict(data)

    def load_data(self, config) -> RunData:
        return run_data(*experiment.load_data(config), config)

    def build_model(self, config):
        return experiment.build_model(config)

    def prepare_model(self, model, config, data: RunData) -> None:
        experiment.init_from_training_data(model, config, data.source[0])

    def task(self, config) -> GSNTask:
        return GSNTask(config.task, config.augment)

    def start_line(self, config, model, data: RunData) -> str:
        line = f"setting={config.task.setting} lam={config.task.lam}"
        if config.task.reads_class_from_both_heads():
            line += f" class_readout_weight={config.task.class_readout_weight:g}"
        line += f" train={len(data.train[0])} val={len(data.val[0])}"
        track = track_words(config.data)
        return f"{line} track={track}" if track else line

    def epoch_logger(self, run_dir: Path, config):
        return None

    def finalize(self, run_dir, config, model, task, data: RunData, summary, device, precision) -> dict:
        return experiment.finalize_run(run_dir, config, model, task, data.source[1], summary, device, precision)

    def make_preset(self, name: str, setting: str = "joint"):
        return config_preset(name, setting)

    demo_preset = "quick"

    def experiment_command(self, config: dict) -> str:
        return "`lab28 suite gsn --preset lab --data DIR` (or `--synth` in place of `--data DIR`)"

    def use_data(self, config, preset: str, data: Path | None = None, synth: bool = False) -> None:
        if synth and data is not None:
            raise Lab28Error("give data=DIR or synth=True, not both")
        if synth:
            config.data.path = ""  # generated: data.synth_n images from data.synth_seed
        elif data is not None:
            config.data.path = str(data)
        elif preset in PRESETS_NEEDING_DATA:  # as on the command line: synthetic data only when asked for
            raise Lab28Error(f"the {preset} preset needs data=DIR (a GSN folder) or synth=True for synthetic data")


WORKLOAD = GSNWorkload()
