"""When do the GSN backbone's 256 features die? Dead units on 500 validation images every 25 training steps.

    python experiments/dead_units.py --data DEV_DIR [--variant default|centered|bias0.1|zerohead|...] [--steps 125]
    python experiments/dead_units.py --data DEV_DIR --first-steps 3    # why: the shift of each unit per step
    python experiments/dead_units.py --data DEV_DIR --variant fclr1e-6 --epochs 6   # accuracy, whole epochs

Trains the lab preset's joint setting (seed 1, one CPU thread) with the trainer's own step and prints
`step:dead` pairs. Variants change one thing: `biasB` starts the big Linear's bias at B, `scaleF` multiplies the
normalised input by F, `epsE` sets Adam's eps to E, `warmupW` warms the learning rate up over W epochs (from 0.1x),
`lrL` trains at a constant learning rate L, `zerohead` starts the weights of both heads' count layers at zero (so the
first step sends no gradient into the backbone), `centeredS` starts the big Linear centred on 512 training images
with spread S (default 1: `--fc-init centered`), `convbias0` starts the convolutions' biases at zero, `fclrL` gives
the big Linear alone the learning rate L (outside the protocol, which fixes Adam at 1e-3 for every layer: a what-if).
The README's dead-unit paragraph comes from this script.
"""

from __future__ import annotations

import argparse

import torch

from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import build_model, load_data
from lab28.workloads.gsn.task import GSNTask
from lab28.workloads.gsn.models import centered_init_
from lab28.training.optim import make_optimizer, make_scheduler
from lab28.training.trainer import _train_epoch

CHUNK = 25  # steps between two counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="GSN folder (the dev set)")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--steps", type=int, default=125)
    parser.add_argument("--epochs", type=int, default=0,
                        help="instead: train whole epochs, print validation top-1 (1,000 images) and dead units")
    parser.add_argument("--first-steps", type=int, default=0,
                        help="instead: after each of the first N steps, how far each unit's pre-activation moved")
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
    if v.startswith("fclr"):
        fc = list(model.backbone.fc.parameters())
        rest = [q for q in model.parameters() if all(q is not f for f in fc)]
        optimizer = torch.optim.Adam([{"params": rest}, {"params": fc, "lr": float(v[4:])}], lr=cfg.train.lr)
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
    elif v.startswith("centered"):
        # The data-dependent start (`--fc-init centered`), with the spread of the pre-activations as the variant says.
        x, _ = task.prepare_batch(train.images[:512], train.counts[:512], train=False)
        centered_init_(model.backbone.fc[1], model.backbone.convs(x).flatten(1), float(v[8:] or 1.0))
    elif v == "convbias0":
        with torch.no_grad():
            for layer in model.backbone.convs:
                if isinstance(layer, torch.nn.Conv2d):
                    layer.bias.zero_()
    elif v == "zerohead":
        with torch.no_grad():
            for layer in (model.cls_head.count_scores, model.count_head):
                layer.weight.zero_()
    elif v not in ("default", "zerohead", "convbias0") and not v.startswith(("warmup", "lr", "fclr", "centered")):
        raise SystemExit(f"unknown variant {v!r}")
    gen = torch.Generator().manual_seed(cfg.train.seed)
    val_x, _ = task.prepare_batch(val.images[:500], val.counts[:500], train=False)

    def dead() -> int:
        model.eval()
        with torch.no_grad():
            h = model.features(val_x)
        model.train()
        return int((h.max(0).values <= 0).sum())

    if args.epochs:
        from lab28.training.trainer import evaluate

        steps = len(train) // cfg.train.batch_size
        for epoch in range(1, args.epochs + 1):
            _train_epoch(model, task, optimizer, scheduler, None, train.images, train.counts, gen, cfg.train, cpu,
                         "fp32", epoch, steps)
            acc = evaluate(model, task, val.images, val.counts, cfg.train, cpu, "fp32")["accuracy"]
            print(f"{v} epoch {epoch}: top-1 {acc:.3f}, dead units {dead()}", flush=True)
        return
    if args.first_steps:
        first_steps(model, task, optimizer, train, val_x, cfg, gen, args.first_steps)
        return
    counts = [f"0:{dead()}"]
    bs = cfg.train.batch_size
    for start in range(0, args.steps, CHUNK):
        part = slice(start * bs, (start + CHUNK) * bs)
        _train_epoch(model, task, optimizer, scheduler, None, train.images[part], train.counts[part], gen, cfg.train,
                     cpu, "fp32", 1, CHUNK)
        counts.append(f"{start + CHUNK}:{dead()}")
    print(v, " ".join(counts))


def first_steps(model, task, optimizer, train, val_x, cfg, gen, n: int) -> None:
    """The mechanism: the big Linear's 50,176 inputs are all >= 0 (they come out of a ReLU), so Adam's sign-like
    step moves all of a unit's weights the same way and shifts its pre-activation for every image at once."""
    def pre_activations():
        model.eval()
        with torch.no_grad():
            inputs = model.backbone.convs(val_x).flatten(1)
            pre = model.backbone.fc[1](inputs)
        model.train()
        return inputs, pre

    inputs, start = pre_activations()
    print(f"sum of the Linear's {inputs.shape[1]} inputs per image: {inputs.sum(1).mean():.0f}; spread of a unit's "
          f"pre-activation over images (std): {start.std(0).mean():.3f}")
    bs = cfg.train.batch_size
    for step in range(1, n + 1):
        part = slice((step - 1) * bs, step * bs)
        _train_epoch(model, task, optimizer, None, None, train.images[part], train.counts[part], gen, cfg.train,
                     torch.device("cpu"), "fp32", 1, 1)
        _, pre = pre_activations()
        print(f"after step {step}: mean |shift| of a unit's pre-activation {(pre - start).mean(0).abs().mean():.3f}; "
              f"dead units {int((pre.max(0).values <= 0).sum())}")


if __name__ == "__main__":
    main()
