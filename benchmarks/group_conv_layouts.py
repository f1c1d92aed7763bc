"""Does the free model's step get faster if its group convolutions keep their activations channels_last?

`GroupConv` (lab28.workloads.gsn.counting_resnet) orders its output channels as 4c + g (channel c, orientation g)
and shares each filter's statistics over its four orientations. It used to normalise them with BatchNorm3d on a
(n, c, 4, h, w) view, which copies the convolution's channels_last output into NCHW, so that every activation of
the backbone was NCHW and each convolution reordered its input back; on the CPU it now keeps the layout
(orientation_norm.shared_batch_norm), and `package` below times it so. Ordered orientation-major (g * C + c)
instead, a channels_last map is physically (n, h, w, 4, C), which can be normalised per c without a copy, in three
ways:

- `batchnorm3d-cl3d`: BatchNorm3d on the (n, C, h, w, 4) view, which is channels_last_3d;
- `batchnorm1d-rows`: batch_norm on the (n * h * w * 4, C) rows;
- `var-mean-affine`: statistics from torch.var_mean per orientation-channel, pooled, then one addcmul.

Each variant is checked to give the same outputs as the package's layout (same weights, evaluation mode), then
the whole training step of counting-resnet-p4-symmetric (hidden 256; batch 128, Adam,
the precision `auto` picks) is timed for each, in this one process; the figures go to
benchmarks/results/group_conv_layouts-<threads>threads.json.

    python benchmarks/group_conv_layouts.py [--steps 20] [--threads N] [--profile]

`--profile` adds, for each layout, the step's top operators by self CPU time over 5 steps (torch.profiler).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from common import save_result

import lab28.workloads.gsn.counting_resnet as counting_resnet
from lab28.models import create_model
from lab28.training.device import autocast, resolve_precision, to_channels_last
from lab28.workloads.gsn.orientation_norm import update_running_statistics

BATCH = 128


def _orientation_major_weight(conv) -> torch.Tensor:
    """conv's full weight with output and input channels reordered from 4c + g to g * C + c."""
    orientations, orientations_in = len(conv.elements), conv.orientations_in
    weight = conv.transformed_weight().view(conv.channels_out, orientations, -1, orientations_in, 3, 3)
    return weight.permute(1, 0, 3, 2, 4, 5).reshape(orientations * conv.channels_out, -1, 3, 3)


def _convolve(conv, x: torch.Tensor) -> torch.Tensor:
    return conv.convolve(x, _orientation_major_weight(conv))


def _norm_cl3d(conv, x):
    y = _convolve(conv, x)
    n, _, h, w = y.shape
    g, c = len(conv.elements), conv.channels_out
    z = conv.norm(y.permute(0, 2, 3, 1).reshape(n, h, w, g, c).permute(0, 4, 1, 2, 3))
    return z.permute(0, 2, 3, 4, 1).reshape(n, h, w, g * c).permute(0, 3, 1, 2)


def _norm_rows(conv, x):
    y = _convolve(conv, x)
    n, _, h, w = y.shape
    norm = conv.norm
    if norm.training:
        norm.num_batches_tracked.add_(1)
    rows = F.batch_norm(y.permute(0, 2, 3, 1).reshape(-1, conv.channels_out), norm.running_mean, norm.running_var,
                        norm.weight, norm.bias, norm.training, norm.momentum, norm.eps)
    return rows.view(n, h, w, -1).permute(0, 3, 1, 2)


def _norm_var_mean(conv, x):
    y = _convolve(conv, x)
    g, c, norm = len(conv.elements), conv.channels_out, conv.norm
    if norm.training:
        var_each, mean_each = (s.float() for s in torch.var_mean(y, dim=(0, 2, 3), correction=0))
        mean = mean_each.view(g, c).mean(0)
        var = (var_each + mean_each ** 2).view(g, c).mean(0) - mean ** 2
        update_running_statistics(norm, mean, var, y.numel() / c)
    else:
        mean, var = norm.running_mean, norm.running_var
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    shift = norm.bias - mean * scale
    return torch.addcmul(shift.repeat(g).to(y.dtype)[None, :, None, None], y,
                         scale.repeat(g).to(y.dtype)[None, :, None, None])


def _pooled_channel_major(backbone, x):
    """The backbone's pooled features put back in the 4c + g order the heads read."""
    features = backbone.layers(x).mean(dim=(2, 3))
    orientations = len(backbone.layers[0].elements)
    return features.view(len(features), orientations, -1).transpose(1, 2).reshape(len(features), -1)


LAYOUTS = {"batchnorm3d-cl3d": _norm_cl3d, "batchnorm1d-rows": _norm_rows, "var-mean-affine": _norm_var_mean}


@contextlib.contextmanager
def layout(name: str):
    """Within the block, GroupConv and its backbone compute in layout `name` ("package": unchanged)."""
    if name == "package":
        yield
        return
    conv_forward = counting_resnet.GroupConv.forward
    backbone_forward = counting_resnet.GroupCountingBackbone.forward
    counting_resnet.GroupConv.forward = LAYOUTS[name]
    counting_resnet.GroupCountingBackbone.forward = _pooled_channel_major
    try:
        yield
    finally:
        counting_resnet.GroupConv.forward = conv_forward
        counting_resnet.GroupCountingBackbone.forward = backbone_forward


def step_throughput(model, precision: str, steps: int, profile: bool = False) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(BATCH, 1, 28, 28, generator=generator) > 0.7).float()
    x = to_channels_last(x)
    classes, counts = torch.randint(0, 135, (BATCH,), generator=generator), torch.rand(BATCH, 6, generator=generator)

    def step():
        with autocast(torch.device("cpu"), precision):
            log_probs, predicted = model(x)
            loss = F.nll_loss(log_probs, classes) + 3 * F.smooth_l1_loss(predicted, counts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    rate = steps * BATCH / (time.perf_counter() - start)
    if profile:
        with torch.profiler.profile() as profiler:
            for _ in range(5):
                step()
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per layout")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--profile", action="store_true", help="the top operators of each layout's step")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    precision = resolve_precision("auto", torch.device("cpu"))
    torch.manual_seed(0)
    reference = create_model("counting-resnet-p4-symmetric", workload="gsn", hidden=256)
    reference = reference.to(memory_format=torch.channels_last).eval()
    probe = to_channels_last(torch.rand(8, 1, 28, 28))
    with torch.no_grad():
        expected = reference(probe)[0]
    print(f"{torch.get_num_threads()} threads, precision {precision}, batch {BATCH}, {args.steps} steps")
    baseline, results = None, {}
    for name in ["package", *LAYOUTS]:
        model = create_model("counting-resnet-p4-symmetric", workload="gsn", hidden=256)
        model.load_state_dict(reference.state_dict())
        model = model.to(memory_format=torch.channels_last)
        with layout(name):
            with torch.no_grad():
                difference = (model.eval()(probe)[0] - expected).abs().max().item()
            rate = step_throughput(model.train(), precision, args.steps, args.profile)
        baseline = baseline or rate
        results[name] = {"train_img_per_s": rate, "ratio": rate / baseline, "largest_output_difference": difference}
        print(f"{name:>18}: {rate:6.0f} img/s ({rate / baseline:.2f}x the package's layout), "
              f"largest output difference {difference:.1e}")
    threads = torch.get_num_threads()
    save_result(f"group_conv_layouts-{threads}threads", {"layouts": results, "steps": args.steps,
                                                          "precision": precision, "batch": BATCH})


if __name__ == "__main__":
    main()
