"""Where the GSN training step stands against this machine's limit, in one process:

- the matmul peak at the thread count in use, fp32 and bf16 (the best of ten square matmuls, before and after the
  timings);
- the FLOPs of one training step per image of the GSN lab model (shape-classifier, the fixed backbone, batch 64,
  joint loss), counted by torch's FlopCounterMode: 2 FLOPs per multiply-add, forward plus the real backward
  (about 3x the forward); element-wise work and the optimizer are not counted;
- the bare step (model, loss, backward and the trainer's fused Adam on one fixed batch: no data handling, no
  weight average), lab28's trainer step and the naive reference pipeline of train_throughput.py, as img/s and
  as a fraction of the peak's equivalent img/s (peak FLOP/s / FLOPs per image) in the precision each ran in.

Without bf16 units (no AMX / AVX512-BF16) the CPU emulates bf16 matmuls, far below fp32: that peak is printed,
marked as emulated, and the bf16 bare step is skipped. `--profile` adds the top operators of the trainer step by
self CPU time (torch.profiler) and the FLOP rate of each counted operator: which part of the step is far from the
peak.

    python benchmarks/step_roofline.py [--data GSN_DIR] [--steps 40] [--threads N] [--profile]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from common import gsn_folder, save_result, step_flops_per_image, sync
from train_throughput import WARMUP_STEPS, gsn_workload, lab28_step

from lab28.models import create_model
from lab28.training.device import autocast, resolve_device, resolve_precision, to_channels_last
from lab28.training.optim import make_optimizer
from lab28.training.trainer import run_epoch
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.task import GSNTask

MODEL, BATCH = "shape-classifier", 64
PROFILE_STEPS, PROFILE_TOP = 10, 8


# -- the machine's peak --------------------------------------------------------------------------------------------
def matmul_gflops(dtype: torch.dtype, n: int, device: torch.device, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n by n x n matmul (2 n^3 FLOPs) over `repeats` timed runs after a warm-up one: the
    best, not the mean, because other processes on a shared machine only ever make a run slower."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def peaks(device: torch.device, native_bf16: bool) -> dict:
    # 2048 reaches the CPU BLAS's steady rate (512 is ~20 % lower on one EPYC core); a GPU needs larger matrices.
    n = 8192 if device.type == "cuda" else 2048
    # An emulated bf16 2048 matmul takes about a minute on one AVX2 core; 512 shows the rate in a fraction of a second.
    n_bf16 = n if native_bf16 else 512
    return {"fp32": {"gflops": matmul_gflops(torch.float32, n, device), "n": n},
            "bf16": {"gflops": matmul_gflops(torch.bfloat16, n_bf16, device), "n": n_bf16, "emulated": not native_bf16}}


# -- the bare step -------------------------------------------------------------------------------------------------
def time_bare(task, tc, x, targets, device, precision: str, steps: int) -> float:
    """img/s of forward, loss, backward and the trainer's optimizer on one fixed batch, in the trainer's memory
    format: what the step costs with nothing around it (no gather, augmentation, weight average or bookkeeping)."""
    torch.manual_seed(1)
    model = create_model(MODEL).to(device).train()
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = to_channels_last(x)
    opt = make_optimizer(model, tc, device)
    for step in range(WARMUP_STEPS + steps):
        if step == WARMUP_STEPS:
            sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast(device, precision):
            out = model(x)
        loss, _ = task.loss(out, targets)
        loss.backward()
        opt.step()
    sync(device)
    return steps * len(x) / (time.perf_counter() - t0)


# -- the profile ---------------------------------------------------------------------------------------------------
def profile_trainer_step(task, tc, images, counts, device, flops_by_op: dict) -> dict:
    """PROFILE_STEPS trainer steps under torch.profiler: the top operators by self CPU time with their share of the
    total, and the FLOP rate of each operator the FLOP counter counts (its FLOPs over its time, children included:
    aten::convolution runs its kernel in aten::mkldnn_convolution)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(1)
    train_step, _, _ = lab28_step(create_model(MODEL), task, tc, images, counts, device, PROFILE_STEPS)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_epoch(train_step, None, 1, PROFILE_STEPS)
        sync(device)
    events = {e.key: e for e in prof.key_averages()}
    total = sum(e.self_cpu_time_total for e in events.values())
    top = sorted(events.values(), key=lambda e: e.self_cpu_time_total, reverse=True)[:PROFILE_TOP]
    return {"top": [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1e3 / PROFILE_STEPS,
                     "share": e.self_cpu_time_total / total, "calls_per_step": e.count / PROFILE_STEPS} for e in top],
            "rates": [{"op": op, "mflop_per_image": n / 1e6,
                       "ms_per_step": events[op].cpu_time_total / 1e3 / PROFILE_STEPS,
                       "gflops": n * tc.batch_size * PROFILE_STEPS / (events[op].cpu_time_total / 1e6) / 1e9}
                      for op, n in flops_by_op.items() if op in events]}


# -- one run -------------------------------------------------------------------------------------------------------
def figure(img_per_s: float, precision: str, flops: float, peak: dict) -> dict:
    """img/s, the FLOP rate it means, and its fraction of the peak's equivalent img/s in the same precision."""
    out = {"img_per_s": img_per_s, "precision": precision, "gflops": img_per_s * flops / 1e9}
    if precision in peak:  # no fp16 peak is measured: fp16 (CUDA without bf16) gets no fraction
        out["of_peak"] = img_per_s / (peak[precision]["gflops"] * 1e9 / flops)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="GSN folder (default: synthetic images written to a temp folder)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps of batch 64 per pipeline (default 40)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--profile", action="store_true",
                        help=f"also profile {PROFILE_STEPS} trainer steps: top {PROFILE_TOP} ops by self CPU time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    load = os.getloadavg()[0]  # other processes share the cores: the figures are read beside it
    native_bf16 = resolve_precision("auto", device) == "bf16"  # the trainer's own test for fast bf16
    first_peak = peaks(device, native_bf16)

    cfg = preset("lab", "joint")
    task = GSNTask(cfg.task, cfg.augment)
    folder = gsn_folder(args.data, n=max(2000, args.steps * BATCH))
    data = load_gsn(folder)
    x, targets = task.prepare_batch(data.images[:BATCH].to(device), data.counts[:BATCH].to(device), train=False)
    torch.manual_seed(1)
    flops = step_flops_per_image(create_model(MODEL).to(device).train(), x,
                                 lambda out: task.loss(out, targets)[0])

    rates = {"bare_fp32": (time_bare(task, cfg.train, x, targets, device, "fp32", args.steps), "fp32")}
    if native_bf16:
        rates["bare_bf16"] = (time_bare(task, cfg.train, x, targets, device, "bf16", args.steps), "bf16")
    # train_throughput's GSN workload: the naive PNG + DataLoader pipeline (fp32) and the trainer's step (auto).
    both = gsn_workload(str(folder), args.steps, device, cuda_graphs=False)
    lab_precision = resolve_precision(cfg.train.precision, device)
    rates["lab28"] = (both["lab28_img_per_s"], lab_precision)
    rates["naive"] = (both["naive_img_per_s"], "fp32")
    # The peak again after the timings, and the better of the two: on a shared machine one short measurement can
    # fall into a busy moment and make every fraction look better than it is.
    last_peak = peaks(device, native_bf16)
    peak = {k: max(first_peak[k], last_peak[k], key=lambda p: p["gflops"]) for k in first_peak}
    figures = {key: figure(img_per_s, precision, flops["train"], peak) for key, (img_per_s, precision) in rates.items()}
    profile = (profile_trainer_step(task, cfg.train, data.images, data.counts, device, flops["train_by_op"])
               if args.profile else None)

    print(f"Step roofline: {MODEL}, batch {BATCH}, device {device}, {torch.get_num_threads()} CPU threads, "
          f"load average {load:.2f}")
    for name, p in peak.items():
        note = " (emulated: no bf16 units)" if p.get("emulated") else ""
        print(f"  matmul peak {name:4s} : {p['gflops']:8.1f} GFLOP/s  ({p['n']}x{p['n']}; before / after the "
              f"timings {first_peak[name]['gflops']:.1f} / {last_peak[name]['gflops']:.1f}){note}")
    print(f"  FLOPs per image  : {flops['train'] / 1e6:8.1f} MFLOP forward + backward "
          f"(forward {flops['forward'] / 1e6:.1f} MFLOP; 2 per multiply-add)")
    labels = {"bare_fp32": "bare step fp32", "bare_bf16": "bare step bf16",
              "lab28": f"lab28 step {lab_precision}", "naive": "naive fp32"}
    for key, label in labels.items():
        if key not in figures:
            print(f"  {label:17s}: skipped (no bf16 units: bf16 is emulated)")
            continue
        f = figures[key]
        share = f" = {f['of_peak']:6.1%} of the {f['precision']} peak" if "of_peak" in f else ""
        print(f"  {label:17s}: {f['img_per_s']:8.1f} img/s  {f['gflops']:6.1f} GFLOP/s{share}")
    if profile:
        print(f"  trainer step ({lab_precision}), top {PROFILE_TOP} ops by self CPU time over {PROFILE_STEPS} steps:")
        for p in profile["top"]:
            print(f"    {p['op']:40s} {p['share']:6.1%}  {p['self_ms_per_step']:7.1f} ms/step  "
                  f"{p['calls_per_step']:5.1f} calls/step")
        print("  the counted operators' FLOP rates (children included):")
        for p in profile["rates"]:
            print(f"    {p['op']:40s} {p['mflop_per_image']:6.1f} MFLOP/img  {p['ms_per_step']:7.1f} ms/step  "
                  f"{p['gflops']:6.1f} GFLOP/s")
    save_result("step_roofline", {"model": MODEL, "batch_size": BATCH, "steps": args.steps, "load_avg": load,
                                  "native_bf16": native_bf16, "peak": peak, "peak_before": first_peak,
                                  "peak_after": last_peak, "flops_per_image": flops,
                                  "figures": figures, "profile": profile})


if __name__ == "__main__":
    main()
