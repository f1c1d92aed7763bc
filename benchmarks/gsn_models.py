"""The GSN models side by side: weights, multiply-adds per image (PyTorch's FLOP counter), training and
evaluation throughput, in one process.

Each registered GSN model trains through lab28's own step (lab28.training.trainer.run_epoch) with the config of
the preset that uses it (shape-classifier: lab, compact-cnn: quick, the counting-resnet models: free; the preset's
own model with the preset's hidden layer, the other counting-resnet models without one),
on the same synthetic images; evaluation is the engine's evaluation path at the preset's evaluation batch.
Timings of one run on one machine compare with each other, not with another machine's.

`--compile` also times each model's step under torch.compile (the trainer's `--compile true`) and prints its ratio
to the eager step measured just before it.

    python benchmarks/gsn_models.py [--steps 40] [--threads N] [--compile] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from common import save_result, step_flops_per_image, sync
from train_throughput import time_lab28

from lab28.models import create_model
from lab28.models.registry import count_parameters
from lab28.training.device import resolve_device, resolve_precision
from lab28.training.trainer import predict_outputs
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.synthetic_track import generated
from lab28.workloads.gsn.task import GSNTask

PRESET_OF_MODEL = {"shape-classifier": "lab", "compact-cnn": "quick", "counting-resnet": "free",
                   "counting-resnet-p4": "free", "counting-resnet-p4-fullres": "free",
                   "counting-resnet-p4-symmetric": "free", "counting-resnet-p4-local": "free",
                   "counting-resnet-p4-gated": "free"}


def eval_throughput(model, task, images, counts, train_config, device) -> float:
    """Images per second of the engine's evaluation path (lab28.training.trainer.predict_outputs), after a warm-up."""
    model = model.to(device).to(memory_format=torch.channels_last)
    precision = resolve_precision(train_config.precision, device)
    predict_outputs(model, task, images[:train_config.eval_batch_size], counts, train_config, device, precision)
    sync(device)
    t0 = time.perf_counter()
    predict_outputs(model, task, images, counts, train_config, device, precision)
    sync(device)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--compile", action="store_true", help="also time each training step under torch.compile")
    parser.add_argument("--models", nargs="+", choices=list(PRESET_OF_MODEL), default=list(PRESET_OF_MODEL),
                        metavar="NAME", help="the models to time (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    images, counts = generated(max(2000, args.steps * 128), seed=0)
    results = {}
    for name in args.models:
        preset_name = PRESET_OF_MODEL[name]
        cfg = preset(preset_name, "joint")
        task = GSNTask(cfg.task, cfg.augment)
        # the preset's own model with its hidden layer; the others it can train, with the heads reading the features
        hidden = cfg.model.hidden if cfg.model.name == name else 0
        torch.manual_seed(1)
        model = create_model(name, workload="gsn", hidden=hidden)
        train, mode = time_lab28(model, task, cfg.train, images, counts, device, args.steps)
        results[name] = {"preset": preset_name, "parameters": count_parameters(model),
                         "multiply_adds": step_flops_per_image(create_model(name, workload="gsn", hidden=hidden).eval(),
                                                               torch.zeros(2, 1, 28, 28),
                                                               lambda out: out[0].sum())["forward"] / 2,
                         "batch_size": cfg.train.batch_size, "train_img_per_s": train, "mode": mode,
                         "eval_img_per_s": eval_throughput(model, task, images, counts, cfg.train, device)}
        if args.compile:
            torch.manual_seed(1)
            compiled, _ = time_lab28(create_model(name, workload="gsn", hidden=hidden), task,
                                     dataclasses.replace(cfg.train, compile=True), images, counts, device, args.steps)
            results[name].update(compiled_train_img_per_s=compiled, compile_gain=compiled / train)
    print(f"GSN models, device {device} ({results[name]['mode']}), {torch.get_num_threads()} CPU threads")
    width = max(len(name) for name in results)
    print(f"  {'model':{width}s} {'preset':7s} {'weights':>11s} {'MACs/img':>10s} {'batch':>5s} {'train img/s':>12s} "
          f"{'eval img/s':>11s}" + (f" {'compiled img/s':>13s} {'ratio':>7s}" if args.compile else ""))
    for name, r in results.items():
        print(f"  {name:{width}s} {r['preset']:7s} {r['parameters']:11,d} {r['multiply_adds'] / 1e6:9.1f}M "
              f"{r['batch_size']:5d} {r['train_img_per_s']:12.1f} {r['eval_img_per_s']:11.1f}"
              + (f" {r['compiled_train_img_per_s']:13.1f} {r['compile_gain']:6.2f}x" if args.compile else ""))
    # a subset is kept beside the whole table, not over it
    save_result("gsn_models" if set(args.models) == set(PRESET_OF_MODEL) else "gsn_models-subset",
                {"models": results, "steps": args.steps})


if __name__ == "__main__":
    main()
