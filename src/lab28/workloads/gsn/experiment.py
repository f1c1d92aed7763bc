"""One GSN run end to end: data -> model -> training -> final evaluation -> a self-describing run folder.

A finished run folder holds: config.json, env.json, metrics.csv (one row per epoch), best.pt,
final_metrics.json, confusion.csv (135 x 135, rows = true class), activation_rates.csv (dead-neuron analysis),
and figures/ drawn from those files. `status.json` says whether the run is running, finished or failed.
"""

from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path

import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.config import GSNRunConfig
from lab28.workloads.gsn.labels import SHAPES
from lab28.workloads.gsn.loader import GSNData, load_gsn
from lab28.workloads.gsn.task import GSNTask
from lab28.io_utils import atomic_write_json, atomic_write_text
from lab28.models import create_model
from lab28.run_folder import RunFolder, check_run_name
from lab28.runfiles import read_unfinished_run, write_matrix
from lab28.runinfo import environment, use_threads
from lab28.train.device import resolve_device, resolve_precision
from lab28.train.trainer import evaluate, fit, metrics_from_outputs, predict_outputs


def load_data(config: GSNRunConfig) -> tuple[GSNData, GSNData]:
    """(train, validation) as the data config says: a folder on disk, or freshly generated synthetic data."""
    dc = config.data
    if dc.path:
        data = load_gsn(dc.path)
    else:
        from lab28.workloads.gsn.synth import generate

        images, counts = generate(dc.synth_n, seed=dc.synth_seed)
        data = GSNData(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(counts).long(),
                       [f"img_{i:05d}.png" for i in range(dc.synth_n)], f"synthetic(n={dc.synth_n}, seed={dc.synth_seed})")
    train, val = data.split_last(dc.val_size)
    if dc.train_size:
        if dc.train_size > len(train):
            raise Lab28Error(f"{data.source}: train_size {dc.train_size} exceeds the {len(train)} training rows")
        train = train.take(slice(0, dc.train_size))
    return train, val


def build_model(config: GSNRunConfig):
    return create_model(config.model.name, workload="gsn", head=config.model.head, dropout=config.model.dropout,
                        fc_init=config.model.fc_init, batchnorm=config.model.batchnorm, hidden=config.model.hidden)


def init_from_training_data(model, config: GSNRunConfig, train: GSNData, images: int = 512) -> None:
    """Data-dependent start weights (`fc_init = centered` or `pooled-centered`) from the first training images,
    never validation ones. The first 512 are enough: the start needs only each unit's mean and spread over images.
    The model decides whether its start uses them (a no-op for the other starts)."""
    x, _ = GSNTask(config.task).prepare_batch(train.images[:images], train.counts[:images], train=False)
    model.init_from_data(x)


@torch.inference_mode()
def activation_rates(model, task: GSNTask, images: torch.Tensor, counts: torch.Tensor, device, batch: int = 1000):
    """Fraction of validation images on which each of the 256 backbone features is > 0.
    A feature with rate 0 is dead: it never fires, so it carries no information."""
    model.eval()
    active = None
    for start in range(0, images.shape[0], batch):
        x, _ = task.prepare_batch(images[start:start + batch].to(device), counts[start:start + batch].to(device), False)
        h = model.features(x.contiguous(memory_format=torch.channels_last)) > 0
        s = h.sum(dim=0)
        active = s if active is None else active + s
    return (active.double() / images.shape[0]).cpu()


def check_config(config: GSNRunConfig) -> tuple[torch.device, str]:
    """Validate every value and resolve the device and precision on this machine: (device, precision), or a
    one-line Lab28Error before anything is loaded or written."""
    try:
        config.validate()
        device = resolve_device(config.train.device)
        return device, resolve_precision(config.train.precision, device)
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None


def run_gsn(config: GSNRunConfig, out_dir: str | Path, name: str, overwrite: bool = False,
            draw_figures: bool = True, data: tuple[GSNData, GSNData] | None = None, on_epoch=None) -> Path:
    """Train one setting and write its run folder; returns the folder (a new suffixed one if `name` exists)."""
    # Everything that can reject the configuration runs before the run folder exists, so a bad flag leaves nothing.
    check_run_name(name)
    device, precision = check_config(config)
    try:
        torch.manual_seed(config.train.seed)
        model = build_model(config)
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    train, val = data if data is not None else load_data(config)
    init_from_training_data(model, config, train)
    folder = RunFolder.create(out_dir, name, overwrite=overwrite)
    run_dir = folder.path
    config.train.threads = use_threads(config.train.threads)
    with folder.active(resume_command=f"lab28 train --resume {shlex.quote(str(run_dir.resolve()))}"):
        if config.data.path:  # absolute, so that --resume works from any working directory
            config.data.path = str(Path(config.data.path).resolve())
        atomic_write_json(run_dir / "config.json", config.to_dict())
        atomic_write_json(run_dir / "env.json", environment(str(device), precision))
        atomic_write_json(run_dir / "data.json", {"source": train.source, "train_size": len(train),
                                                  "val_size": len(val), "val_first": val.names[0],
                                                  "val_last": val.names[-1]})
        _train_and_finalize(run_dir, config, model, train, val, device, precision, draw_figures, resume=None,
                            on_epoch=on_epoch)
    return folder.finish()


def resume_gsn(run_dir: str | Path, draw_figures: bool = True, finish: bool = False) -> Path:
    """Continue an interrupted run from its last.pt, with the data, config and random states it had.

    finish=True trains no further: the run is finalized (best weights evaluated, figures, final metrics) as it
    stands, and its stop reason says that the user ended it.
    """
    from lab28.workloads.gsn.config import config_from_dict

    run_dir = Path(run_dir)
    folder = RunFolder.open_existing(run_dir)
    try:
        config, state = read_unfinished_run(run_dir, config_from_dict)
        device = resolve_device(config.train.device)
        train, val = load_data(config)
        model = build_model(config)
        precision = resolve_precision(config.train.precision, device)
    except BaseException:
        folder.release()
        raise
    if finish:
        state["stopped"] = True
        state["stop_reason"] = f"ended by the user after epoch {state['epoch']} (lab28 train --resume --finish)"
    print(f"[{run_dir.name}] {'finishing' if finish else 'resuming'} after epoch {state['epoch']}", flush=True)
    with folder.active(resume_command=f"lab28 train --resume {shlex.quote(str(run_dir.resolve()))}"):
        _train_and_finalize(run_dir, config, model, train, val, device, precision, draw_figures, resume=state)
    return folder.finish()


def _train_and_finalize(run_dir, config, model, train, val, device, precision, draw_figures, resume,
                        on_epoch=None) -> None:
    task = GSNTask(config.task, config.augment)
    print(f"[{run_dir.name}] setting={config.task.setting} lambda={config.task.lam} device={device} "
          f"precision={precision} train={len(train)} val={len(val)}", flush=True)
    summary = fit(model, task, (train.images, train.counts), (val.images, val.counts), config.train, run_dir,
                  extra_state={"config": config.to_dict()}, resume=resume, on_epoch=on_epoch)
    finalize_run(run_dir, config, model, task, val, summary, device, precision)
    if draw_figures:
        from lab28.workloads.gsn.figures import draw_run_figures

        draw_run_figures(run_dir)


def val_predictions_csv(names: list[str], true: list[int], pred: list[int], counts: list[list[float]]) -> str:
    """val_predictions.csv text; the csv module quotes image names that hold commas or quotes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "true_class", "pred_class", *[f"pred_{s}" for s in SHAPES]])
    for name, t, p, c in zip(names, true, pred, counts):
        writer.writerow([name, t, p, *[f"{v:.4f}" for v in c]])
    return buf.getvalue()


def finalize_run(run_dir: Path, config: GSNRunConfig, model, task: GSNTask, val: GSNData, summary: dict,
                 device, precision: str) -> dict:
    """Reload the best weights, evaluate them once more, and write the final artefacts."""
    best = torch.load(run_dir / "best.pt", map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    outputs, targets = predict_outputs(model, task, val.images, val.counts, config.train, device, precision)
    final = metrics_from_outputs(task, outputs, targets)
    from lab28.workloads.gsn.tta import DihedralTTA

    final_tta = evaluate(DihedralTTA(model), task, val.images, val.counts, config.train, device, precision)
    cm = task.confusion(outputs, targets).numpy()
    pred_classes, pred_counts = task.predict(outputs)
    rates = activation_rates(model, task, val.images, val.counts, device)
    dead = float((rates == 0).double().mean())
    write_matrix(run_dir / "confusion.csv", cm)
    atomic_write_text(run_dir / "activation_rates.csv", "feature,rate\n" + "".join(
        f"{i},{r:.6f}\n" for i, r in enumerate(rates.tolist())))
    atomic_write_text(run_dir / "val_predictions.csv",
                      val_predictions_csv(val.names, targets["classes"].tolist(), pred_classes.tolist(),
                                          pred_counts.tolist()))
    result = {
        "setting": config.task.setting, "lambda": config.task.lam,
        "val": final,
        # The same weights, answers averaged over the 8 flips/quarter turns (see lab28.workloads.gsn.tta).
        "val_tta": {k: v for k, v in final_tta.items() if "/" not in k},
        "dead_features": dead, "dead_feature_count": int((rates == 0).sum()),
        **{k: v for k, v in summary.items() if k != "history"},
    }
    atomic_write_json(run_dir / "final_metrics.json", result)
    (run_dir / "last.pt").unlink(missing_ok=True)  # only needed to resume an unfinished run; ~3x the model size
    return result
