"""The run lifecycle, written once for every workload: a new run, a resumed one, a finished or failed one.

    train_run:  check every setting -> seed, build the model, load the data, start weights (an earlier run's with
                train.init_from, else the workload's) -> create and lock the folder ->
                config.json, env.json, data.json -> fit -> best weights -> the workload's final artefacts
                -> figures -> status finished (and, for --overwrite, the swap into place)
    resume_run: lock the folder -> its config and last.pt -> the same data -> fit from where it stopped -> ...

The workload (lab28.workloads.base.Workload) supplies data, task, model, final artefacts and figures; which
workload a run folder belongs to is written in its config.json.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import torch

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_json
from lab28.runinfo import environment, use_threads
from lab28.runs.files import read_unfinished_run
from lab28.runs.folder import RunFolder, check_run_name
from lab28.runs.init_from import start_from_weights
from lab28.training.checkpoint import load_checkpoint
from lab28.training.trainer import fit


def resume_command(run_dir: Path) -> str:
    """What a user types to continue this run: absolute, so it works from any directory."""
    return f"lab28 train --resume {shlex.quote(str(Path(run_dir).resolve()))}"


def train_run(workload, config, out_dir: str | Path, name: str, overwrite: bool = False, data=None,
              draw_figures: bool = True, on_epoch=None, progress_label: str | None = None) -> Path:
    """Train one run into out_dir/name (name-2, ... if it exists; see RunFolder for --overwrite); returns its folder.

    `data`: the workload's RunData, when a suite loads it once for several runs.
    `progress_label`: set by a parallel suite's worker: each epoch line starts with it, and no bar is drawn.
    """
    # Everything that can reject the configuration runs before the run folder exists, so a bad flag leaves nothing.
    check_run_name(name)
    device, precision = workload.check_config(config)
    torch.manual_seed(config.train.seed)
    try:
        model = workload.build_model(config)
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    if config.train.init_from:
        # The earlier run's weights replace the random start, so the data-dependent start must not run over them.
        start_from_weights(config, model)
        config.train.init_from = str(Path(config.train.init_from).resolve())  # as recorded: from any directory
    data = data if data is not None else workload.load_data(config)
    if not config.train.init_from:
        workload.prepare_model(model, config, data)
    folder = RunFolder.create(out_dir, name, overwrite=overwrite)
    run_dir = folder.path
    config.train.threads = use_threads(config.train.threads)
    with folder.active(resume_command=resume_command(run_dir)):
        if config.data.path:  # absolute, so that --resume works from any working directory
            config.data.path = str(Path(config.data.path).resolve())
        atomic_write_json(run_dir / "config.json", config.to_dict())
        atomic_write_json(run_dir / "env.json", environment(str(device), precision))
        atomic_write_json(run_dir / "data.json", data.description)
        _train_and_finalize(workload, run_dir, config, model, data, device, precision, draw_figures, None, on_epoch,
                            progress_label)
    return folder.finish()


def resume_run(run_dir: str | Path, finish: bool = False, draw_figures: bool = True) -> Path:
    """Continue an interrupted run from its last.pt, with the data, config and random states it had.

    finish=True trains no further: the run is finalized (best weights evaluated, figures, final metrics) as it
    stands, and its stop reason says that the user ended it.
    """
    from lab28.workloads import workload_of_run

    run_dir = Path(run_dir)
    folder = RunFolder.open_existing(run_dir)
    try:
        workload = workload_of_run(run_dir)
        config, state = read_unfinished_run(run_dir, workload.config_from_dict)
        device, precision = workload.check_config(config)
        data = workload.load_data(config)
        model = workload.build_model(config)
        _check_state_applies(run_dir / "last.pt", model, state)
    except BaseException:
        folder.release()
        raise
    if finish:
        state["stopped"] = True
        state["stop_reason"] = f"ended by the user after epoch {state['epoch']} (lab28 train --resume --finish)"
    print(f"[{run_dir.name}] {'finishing' if finish else 'resuming'} after epoch {state['epoch']}", flush=True)
    with folder.active(resume_command=resume_command(run_dir)):
        _train_and_finalize(workload, run_dir, config, model, data, device, precision, draw_figures, state, None)
    return folder.finish()


def _train_and_finalize(workload, run_dir: Path, config, model, data, device, precision: str, draw_figures: bool,
                        resume: dict | None, on_epoch, progress_label: str | None = None) -> None:
    task = workload.task(config)
    start = workload.start_line(config, model, data)
    if config.train.init_from:
        start += f" init_from={config.train.init_from}"
    print(f"[{run_dir.name}] {start} device={device} precision={precision}", flush=True)
    logger = workload.epoch_logger(run_dir, config)
    callbacks = [c for c in (logger.epoch if logger is not None else None, on_epoch) if c is not None]
    try:
        summary = fit(model, task, data.train, data.val, config.train, run_dir,
                      extra_state={"config": config.to_dict()}, resume=resume,
                      on_epoch=_all_of(callbacks),
                      progress_label=progress_label, epoch_data=data.epoch_data, extra_val=data.extra_val)
        model.load_state_dict(load_checkpoint(run_dir / "best.pt", device)["model"])
        result = workload.finalize(run_dir, config, model, task, data, summary, device, precision)
        if draw_figures:
            workload.draw_figures(run_dir)
        if logger is not None:
            logger.finish(run_dir, result)
        # Only needed to resume an unfinished run (~3x the model): removed last, so that a failure above can still
        # be finished with --resume --finish.
        (run_dir / "last.pt").unlink(missing_ok=True)
    finally:
        if logger is not None:
            logger.close()



def _all_of(callbacks: list):
    """One on_epoch callback calling each of `callbacks`; it passes on the first stop request any of them makes."""
    if not callbacks:
        return None

    def on_epoch(row: dict) -> str | None:
        requests = [c(row) for c in callbacks]
        return next((r for r in requests if r), None)

    return on_epoch


def _check_state_applies(path: Path, model, state: dict) -> None:
    """Try last.pt's weights, random states and early-stopping state on scratch objects (the global random states
    are put back), so that a damaged but loadable file is one line naming it, before the run is marked running."""
    import copy
    import random

    import numpy as np

    from lab28.training.early_stopping import EarlyStopping, EarlyStoppingConfig
    from lab28.training.optim import parameter_groups

    saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        copy.deepcopy(model).load_state_dict(state["model"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        numpy_state = rng["numpy"]
        if isinstance(numpy_state, dict):
            np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                                 numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
        else:
            np.random.set_state(numpy_state)
        random.setstate(rng["python"])
        EarlyStopping(EarlyStoppingConfig()).load_state_dict(state["early_stopping"])
        saved_groups = [len(group["params"]) for group in state["optimizer"]["param_groups"]]
        model_groups = [len(group["params"]) for group in parameter_groups(model, 1.0)]
        if saved_groups != model_groups:  # e.g. config.json's fc_lr_scale edited since the run started
            raise ValueError(f"its optimizer holds parameter groups of {saved_groups} tensors, this run's config "
                             f"gives {model_groups}")
        best = state["early_stopping"]["best"]
        if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
            raise ValueError(f"early-stopping best {best!r} is not a number")
        for row in state["history"]:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values()):
                raise ValueError("a history row holds a value that is not a number")
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__  # torch's messages run over several lines
        raise Lab28Error(f"{path}: damaged checkpoint: {reason[:240]}") from None
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
