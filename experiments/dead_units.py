"""When do the GSN backbone's 256 features die? Dead units on 500 validation images every 25 training steps.

    python experiments/dead_units.py --data DEV_DIR [--variant default|bias0.1|scale0.1|eps1e-4] [--steps 125]

Trains the lab preset's joint setting (seed 1, one CPU thread) with the trainer's own step and prints
`step:dead` pairs. Variants change one thing: `biasB` starts the big Linear's bias at B, `scaleF` multiplies the
normalised input by F, `epsE` sets Adam's eps to E, `warmupW` warms the learning rate up over W epochs (from 0.1x),
`lrL` trains at a constant learning rate L. The README's dead-unit paragraph comes from this script.
"""

from __future__ import annotations

import argparse

import torch

from lab28.gsn.config import preset
from lab28.gsn.experiment import build_model, load_data
from lab28.gsn.task import GSNTask
from lab28.train.trainer import _train_epoch, make_optimizer, make_scheduler

CHUNK = 25  # steps between two counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="GSN folder (the dev set)")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--steps", type=int, default=125)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    cfg = preset("lab", "joint")
    cfg.data.path, cfg.train.progress = args.data, False
    train, val = load_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    task = GSNTask(cfg.task, cfg.augment)
    v = args.variant
    if v.startswith("warmup"):
        cfg.train.warmup_epochs = float(v[6:])
    elif v.startswith("lr"):
        cfg.train.lr = float(v[2:])
    optimizer = make_optimizer(model, cfg.train, cpu)
    scheduler = make_scheduler(optimizer, cfg.train, len(train) // cfg.train.batch_size)
    if v.startswith("bias"):
        with torch.no_grad():
            model.backbone.fc[1].bias.fill_(float(v[4:]))
    elif v.startswith("scale"):
        factor, prepare = float(v[5:]), task.prepare_batch

        def scaled(images, counts, train, generator=None):
            x, t = prepare(images, counts, train, generator)
            return x * factor, t

        task.prepare_batch = scaled
    elif v.startswith("eps"):
        for group in optimizer.param_groups:
            group["eps"] = float(v[3:])
    elif v != "default" and not v.startswith(("warmup", "lr")):
        raise SystemExit(f"unknown variant {v!r}")
    gen = torch.Generator().manual_seed(cfg.train.seed)
    val_x, _ = task.prepare_batch(val.images[:500], val.counts[:500], train=False)

    def dead() -> int:
        model.eval()
        with torch.no_grad():
            h = model.features(val_x)
        model.train()
        return int((h.max(0).values <= 0).sum())

    counts = [f"0:{dead()}"]
    bs = cfg.train.batch_size
    for start in range(0, args.steps, CHUNK):
        part = slice(start * bs, (start + CHUNK) * bs)
        _train_epoch(model, task, optimizer, scheduler, None, train.images[part], train.counts[part], gen, cfg.train,
                     cpu, "fp32", 1, CHUNK)
        counts.append(f"{start + CHUNK}:{dead()}")
    print(v, " ".join(counts))


if __name__ == "__main__":
    main()
