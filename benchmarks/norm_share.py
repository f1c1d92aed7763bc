"""How much of the free GSN model's step do its batch norms take?

Times the forward and backward pass of the `free` preset's model (counting-resnet-p4-gated, hidden 256) on a
batch of 128 with every GroupConv's BatchNorm3d in place and with each replaced by the identity, alternately in one
process, in the precision `auto` picks. The model without norms is not one to train: the difference is an upper
bound on what a faster normalisation could save, the number that says whether writing one is worth it
(docs/gsn.md, "On a CPU with bf16 units but no AMX").

    python benchmarks/norm_share.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import save_result

from lab28.models import create_model
from lab28.training.device import autocast, resolve_precision
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.counting_resnet import GroupConv

BATCH = 128


def pass_ms(model: torch.nn.Module, images: torch.Tensor, precision: str, passes: int = 8) -> float:
    """Milliseconds of one forward and backward pass, after two untimed ones."""
    def one_pass():
        with autocast(torch.device("cpu"), precision):
            class_scores, counts = model(images)[:2]
        (class_scores.float().sum() + counts.float().sum()).backward()

    for _ in range(2):
        one_pass()
    start = time.perf_counter()
    for _ in range(passes):
        one_pass()
    return (time.perf_counter() - start) / passes * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two timings")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = preset("free", "joint")
    precision = resolve_precision(cfg.train.precision, torch.device("cpu"))
    torch.manual_seed(1)
    model = create_model(cfg.model.name, workload="gsn", hidden=cfg.model.hidden)
    model = model.to(memory_format=torch.channels_last).train()
    images = torch.rand(BATCH, 1, 28, 28).to(memory_format=torch.channels_last)
    norms = {layer: layer.norm for layer in model.modules() if isinstance(layer, GroupConv)}
    with_norms, without_norms = [], []
    for _ in range(args.repeats):
        for layer, norm in norms.items():
            layer.norm = norm
        with_norms.append(pass_ms(model, images, precision))
        for layer in norms:
            layer.norm = torch.nn.Identity()
        without_norms.append(pass_ms(model, images, precision))
    best_with, best_without = min(with_norms), min(without_norms)
    print(f"{cfg.model.name}, batch {BATCH}, {precision}, {torch.get_num_threads()} CPU threads: forward + backward "
          f"{best_with:.1f} ms with its {len(norms)} batch norms, {best_without:.1f} ms without them (best of "
          f"{args.repeats}); the norms' share is at most {1 - best_without / best_with:.0%}")
    save_result(f"norm_share-{torch.get_num_threads()}threads",
                {"model": cfg.model.name, "batch": BATCH, "precision": precision, "with_norms_ms": with_norms,
                 "without_norms_ms": without_norms, "share_at_most": 1 - best_without / best_with})


if __name__ == "__main__":
    main()
