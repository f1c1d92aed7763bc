"""How much of the free GSN model's step do its batch norms take, and which way of computing them takes least?

Times the forward and backward pass of the `free` preset's model (counting-resnet-p4-gated, hidden 256) on a
batch of 128, alternately in one process, in the precision `auto` picks:

- `package`: GroupConv as it is: on the CPU, orientation_norm.shared_batch_norm, PyTorch's own batch-norm kernels
  on the channels_last map as it is, with each filter's statistics pooled over its orientations;
- `batchnorm3d`: BatchNorm3d on the (n, c, 4, h, w) view, which copies the channels_last map to NCHW (the
  package's way before shared_batch_norm, and still its way on CUDA);
- `rows`: the same BatchNorm3d on the (n * h * w, c, 4, 1, 1) rows that the package's channel order (4c + g) makes
  of a channels_last map: a view, no copies, and the output stays channels_last (the same statistics, so the same
  outputs to rounding);
- `compiled`: the same statistics (each channel's mean and mean square over the batch and positions, pooled over
  its four orientations) and one affine map, written in tensor operations on the channels_last map as it is and
  compiled by torch.compile into fused loops;
- `none`: each norm replaced by the identity. That model is not one to train: its difference to `package` is an
  upper bound on what a faster normalisation could still save (docs/gsn.md, "On a CPU with bf16 units but no
  AMX").

    python benchmarks/norm_share.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch._dynamo

from common import save_result

from lab28.models import create_model
from lab28.training.device import autocast, resolve_precision
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.counting_resnet import GroupConv
from lab28.workloads.gsn.orientation_norm import update_running_statistics

BATCH = 128


normalise_batchnorm3d = GroupConv.normalise_on_view


def normalise_rows(self: GroupConv, y: torch.Tensor) -> torch.Tensor:
    """GroupConv.normalise on the rows view of a channels_last map (BatchNorm3d's view on any other map)."""
    if not y.is_contiguous(memory_format=torch.channels_last):
        return normalise_batchnorm3d(self, y)
    n, _, h, w = y.shape
    rows = y.permute(0, 2, 3, 1).reshape(n * h * w, self.channels_out, len(self.elements), 1, 1)
    return self.norm(rows).reshape(n, h, w, -1).permute(0, 3, 1, 2)


def shared_statistics_norm(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, orientations: int,
                           eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y normalised with each filter's statistics shared over its orientations (channel index
    orientations * c + g), in fp32; also the batch mean and (biased) variance per filter."""
    values = y.float()
    mean = values.mean(dim=(0, 2, 3)).view(-1, orientations).mean(1)
    variance = (values * values).mean(dim=(0, 2, 3)).view(-1, orientations).mean(1) - mean * mean
    scale = weight * torch.rsqrt(variance + eps)
    shift = bias - mean * scale
    out = values * scale.repeat_interleave(orientations)[None, :, None, None] \
        + shift.repeat_interleave(orientations)[None, :, None, None]
    return out.to(y.dtype), mean, variance


# Each layer's map has its own shape, and each shape compiles once.
torch._dynamo.config.recompile_limit = 64
compiled_norm = torch.compile(shared_statistics_norm, dynamic=False)


def normalise_compiled(self: GroupConv, y: torch.Tensor) -> torch.Tensor:
    """GroupConv.normalise by the compiled statistics, with BatchNorm's running averages kept up to date."""
    norm = self.norm
    if not norm.training:
        return PACKAGE_NORMALISE(self, y)
    out, mean, variance = compiled_norm(y, norm.weight, norm.bias, len(self.elements), norm.eps)
    update_running_statistics(norm, mean, variance, y.numel() / self.channels_out)
    return out


def normalise_none(self: GroupConv, y: torch.Tensor) -> torch.Tensor:
    """No normalisation at all: the bound on what a faster norm could save, not a model to train."""
    return y


PACKAGE_NORMALISE = GroupConv.normalise


def check_same_outputs(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Every variant normalises as the package does: the same training-mode outputs in fp32, to rounding."""
    outputs = {}
    for name, normalise in (("package", PACKAGE_NORMALISE), ("batchnorm3d", normalise_batchnorm3d),
                            ("rows", normalise_rows), ("compiled", normalise_compiled)):
        GroupConv.normalise = normalise
        with torch.no_grad():
            outputs[name] = copy.deepcopy(model)(images)[0]
    GroupConv.normalise = PACKAGE_NORMALISE
    for name in ("batchnorm3d", "rows", "compiled"):
        difference = (outputs["package"] - outputs[name]).abs().max().item()
        if difference > 1e-4:
            raise SystemExit(f"the {name} variant changes the outputs by {difference:.2g}")


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
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the four timings, one after the other")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads < 0:
        parser.error(f"--threads must be 0 (the default) or more, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = preset("free", "joint")
    precision = resolve_precision(cfg.train.precision, torch.device("cpu"))
    torch.manual_seed(1)
    model = create_model(cfg.model.name, workload="gsn", hidden=cfg.model.hidden)
    model = model.to(memory_format=torch.channels_last).train()
    images = torch.rand(BATCH, 1, 28, 28).to(memory_format=torch.channels_last)
    check_same_outputs(model, images)
    norm_count = sum(isinstance(layer, GroupConv) for layer in model.modules())
    variants = {"package": PACKAGE_NORMALISE, "batchnorm3d": normalise_batchnorm3d, "rows": normalise_rows,
                "compiled": normalise_compiled, "none": normalise_none}
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, normalise in variants.items():
            GroupConv.normalise = normalise
            times[name].append(pass_ms(model, images, precision))
    GroupConv.normalise = PACKAGE_NORMALISE
    best = {name: min(values) for name, values in times.items()}
    print(f"{cfg.model.name}, batch {BATCH}, {precision}, {torch.get_num_threads()} CPU threads, forward + backward, "
          f"best of {args.repeats}:")
    for name, ms in best.items():
        print(f"  {name:11s} {ms:7.1f} ms  {best['package'] / ms:5.2f}x the package's speed")
    print(f"  the {norm_count} batch norms' share of the package's pass is at most "
          f"{1 - best['none'] / best['package']:.0%}")
    save_result(f"norm_share-{torch.get_num_threads()}threads",
                {"model": cfg.model.name, "batch": BATCH, "precision": precision, "ms": times,
                 "share_at_most": 1 - best["none"] / best["package"]})


if __name__ == "__main__":
    main()
