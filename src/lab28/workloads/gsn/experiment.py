"""The GSN workload's pieces of a run (the engine's lifecycle, lab28.runs.lifecycle, drives them).

A finished run folder holds: config.json, env.json, metrics.csv (one row per epoch), best.pt,
final_metrics.json, confusion.csv (135 x 135, rows = true class), activation_rates.csv (dead-neuron analysis),
val_predictions.csv, prediction_samples.npz (the validation images behind the image grids, lab28.runs.samples,
plus true_counts and pred_counts N x 6) and figures/ drawn from those files. `status.json` says whether the run
is running, finished or failed.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.config import GSNRunConfig
from lab28.workloads.gsn.labels import SHAPES
from lab28.workloads.gsn.loader import GSNData, load_gsn
from lab28.workloads.gsn.models import GSNBackbone
from lab28.workloads.gsn.task import GSNTask
from lab28.io_utils import atomic_write_json, atomic_write_text
from lab28.models import create_model
from lab28.runs.files import write_matrix
from lab28.runs.samples import SAMPLES_FILE, choose_rows, write_samples
from lab28.training.device import to_channels_last
from lab28.training.trainer import evaluate, metrics_from_outputs, predict_outputs


# prediction_samples.npz: validation images at random (they also show the augmentation) + extra misclassified ones
SAMPLES_RANDOM, SAMPLES_MISTAKES = 8, 24


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
    model = create_model(config.model.name, workload="gsn", head=config.model.head, dropout=config.model.dropout,
                         fc_init=config.model.fc_init, batchnorm=config.model.batchnorm, hidden=config.model.hidden)
    if config.model.fc_lr_scale != 1.0:
        if not isinstance(getattr(model, "backbone", None), GSNBackbone):
            raise ValueError(f"fc_lr_scale sets the learning rate of the lab backbone's Linear; model "
                             f"{config.model.name!r} has none (use fc_lr_scale 1)")
        model.set_fc_lr_scale(config.model.fc_lr_scale)
    return model


def init_from_training_data(model, config: GSNRunConfig, train: GSNData, images: int = 512) -> None:
    """Data-dependent start weights (`fc_init = centered` or `pooled-centered`) from the first training images,
    never validation ones. The first 512 are enough: the start needs only each unit's mean and spread over images.
    The model decides whether its start uses them (a no-op for the other starts)."""
    x, _ = GSNTask(config.task).prepare_batch(train.images[:images], train.counts[:images], train=False)
    model.init_from_data(x)


@torch.inference_mode()
def activation_rates(model, task: GSNTask, images: torch.Tensor, counts: torch.Tensor, device, batch: int = 1000):
    """Fraction of validation images on which each backbone feature (256 in the lab model) is > 0.
    A feature with rate 0 is dead: it never fires, so it carries no information."""
    model.eval()
    active = None
    for start in range(0, images.shape[0], batch):
        x, _ = task.prepare_batch(images[start:start + batch].to(device), counts[start:start + batch].to(device), False)
        h = model.features(to_channels_last(x)) > 0
        s = h.sum(dim=0)
        active = s if active is None else active + s
    return (active.double() / images.shape[0]).cpu()


def run_gsn(config: GSNRunConfig, out_dir: str | Path, name: str, overwrite: bool = False,
            draw_figures: bool = True, data: tuple[GSNData, GSNData] | None = None, on_epoch=None) -> Path:
    """Train one setting and write its run folder (lab28.runs.lifecycle); returns the folder."""
    from lab28.runs.lifecycle import train_run
    from lab28.workloads.gsn.workload import WORKLOAD, run_data

    return train_run(WORKLOAD, config, out_dir, name, overwrite=overwrite, draw_figures=draw_figures,
                     data=run_data(*data, config) if data is not None else None, on_epoch=on_epoch)


def resume_gsn(run_dir: str | Path, draw_figures: bool = True, finish: bool = False) -> Path:
    """Continue (or, with finish=True, end where it stands) an interrupted run: lab28.runs.lifecycle.resume_run."""
    from lab28.runs.lifecycle import resume_run

    return resume_run(run_dir, finish=finish, draw_figures=draw_figures)


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
    """Evaluate the best weights (loaded into `model`) once more, and write the final artefacts."""
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
    true_classes = targets["classes"].cpu()
    pick = choose_rows((pred_classes.cpu() != true_classes).numpy(), SAMPLES_RANDOM, SAMPLES_MISTAKES,
                       seed=config.train.seed)
    rows = torch.from_numpy(pick)
    write_samples(run_dir / SAMPLES_FILE, images=val.images[rows, 0].numpy(), true=true_classes[rows].numpy(),
                  pred=pred_classes.cpu()[rows].numpy(), val_index=pick, true_counts=val.counts[rows].numpy(),
                  pred_counts=pred_counts.cpu()[rows].numpy().astype("float32"))
    atomic_write_text(run_dir / "val_predictions.csv",
                      val_predictions_csv(val.names, targets["classes"].tolist(), pred_classes.tolist(),
                                          pred_counts.tolist()))
    result = {
        "setting": config.task.setting, "lam": config.task.lam,
        # The weight the class readout used: 0 where the class head alone was read (lab28.workloads.gsn.task).
        "class_readout_weight": config.task.class_readout_weight if config.task.reads_class_from_both_heads() else 0.0,
        "val": final,
        # The same weights, answers averaged over the 8 flips/quarter turns (see lab28.workloads.gsn.tta).
        "val_tta": {k: v for k, v in final_tta.items() if "/" not in k},
        "dead_features": dead, "dead_feature_count": int((rates == 0).sum()), "feature_count": len(rates),
        **{k: v for k, v in summary.items() if k != "history"},
    }
    atomic_write_json(run_dir / "final_metrics.json", result)
    return result
