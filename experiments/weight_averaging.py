"""How much does a moving average of the weights validate above the weights themselves, and at what decay?

    python experiments/weight_averaging.py --data DEV_DIR [--setting joint] [--epochs 60] [--decays 0.99,0.998,0.999]
        [--precision fp32] [--threads 2]

Why: a lab run's validation top-1 moves by +-3 points from one epoch to the next, and averaging the eight
flips/quarter turns of each image (TTA) adds ~6 points, so the weights of any one step are a noisy estimate.
An exponential moving average of the weights (lab28.training.averaging, updated after every Adam step; decay d
averages over ~1/(1-d) steps, 125 steps per epoch) removes that noise without touching the optimizer: Adam 1e-3
trains exactly as in the protocol, and the averages only ride along. Trains the lab preset in one setting (seed 1)
with the trainer's own step and prints, per epoch, validation top-1 and count RMSE (what `reg` early-stops on) of
the trained weights and of one average per decay, each read as the preset reads it. This comparison chose the
presets' `weight_average = 0.99`, and the lab preset's 0.998 with full runs beside it (docs/gsn.md); a run of a
preset logs the trained weights' own top-1 beside the average's (`val_raw_accuracy` in metrics.csv).
"""

from __future__ import annotations

import argparse

import torch

from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import build_model, init_from_training_data, load_data
from lab28.workloads.gsn.task import GSNTask
from lab28.training.averaging import WeightAverage
from lab28.training.step import TrainStep
from lab28.training.optim import make_optimizer
from lab28.training.trainer import evaluate, run_epoch


class AveragingStep(TrainStep):
    """The trainer's step, followed by one update of each moving average of the weights."""

    def __init__(self, *args, averages: list[WeightAverage], **kwargs):
        super().__init__(*args, **kwargs)
        self.averages = averages

    def __call__(self, idx: torch.Tensor) -> None:
        super().__call__(idx)
        for average in self.averages:
            average.update()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="GSN folder (the dev set)")
    parser.add_argument("--setting", choices=("cls", "reg", "joint"), default="joint")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--decays", default="0.99,0.998,0.999")
    parser.add_argument("--fc-init", default="default")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16 on a CPU with bf16 units is what the preset's `auto` picks there")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    cfg = preset("lab", args.setting)
    cfg.data.path, cfg.train.progress, cfg.model.fc_init = args.data, False, args.fc_init
    train, val = load_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    init_from_training_data(model, cfg, train)
    task = GSNTask(cfg.task, cfg.augment)
    cfg.train.weight_average = 0.0  # the averages are this script's own, one per decay
    averages = {float(d): WeightAverage(model, float(d)) for d in args.decays.split(",")}
    optimizer = make_optimizer(model, cfg.train, cpu)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    step = AveragingStep(model, task, optimizer, None, train.images, train.counts, gen, cfg.train, cpu, args.precision,
                         averages=list(averages.values()))
    steps = len(train) // cfg.train.batch_size
    best = {name: (0.0, float("inf")) for name in ["weights", *averages]}
    for epoch in range(1, args.epochs + 1):
        run_epoch(step, None, epoch, steps)
        row = []
        for name, net in [("weights", model), *((d, a.model) for d, a in averages.items())]:
            metrics = evaluate(net, task, val.images, val.counts, cfg.train, cpu, args.precision)
            acc, rmse = metrics["accuracy"], metrics["rmse"]
            best[name] = (max(best[name][0], acc), min(best[name][1], rmse))
            row.append(f"{name} {acc:.3f} / {rmse:.3f} (best {best[name][0]:.3f} / {best[name][1]:.3f})")
        model.train()
        print(f"epoch {epoch} (top-1 / RMSE): " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
