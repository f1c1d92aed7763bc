"""Training throughput: lab28's training step vs a naive reference pipeline, same model, same data, same process.

Two workloads, both at batch 64:
- GSN (lab protocol, joint loss). Naive reference, as a typical notebook writes it: a torch Dataset that opens
  each PNG with PIL in __getitem__, per-sample augmentation in Python, DataLoader(batch_size=64, shuffle=True),
  fp32, default Adam, NCHW. lab28: the data set decoded once into a uint8 tensor, batches as index slices,
  batched label-aware augmentation, fused Adam, channels_last, precision auto — the trainer's own step
  (lab28.training.trainer.run_epoch; on CUDA replayed from a CUDA graph, as in training).
- Fashion-MNIST (the `seed` recipe: AdamW 3e-4, flips + rotation up to 90 degrees, simple-cnn). Naive reference:
  a Dataset over the uint8 array that builds a PIL image per sample and flips/rotates it with PIL (what
  torchvision's FashionMNIST + RandomRotation do), DataLoader(batch_size=64, shuffle=True), fp32, default AdamW.

Both pipelines run the model on the same device (the GPU when there is one): the naive one moves each batch there.

    python benchmarks/train_throughput.py [--workload gsn|fashion|both] [--data GSN_DIR] [--steps 60] [--threads N]
                                          [--cuda-graphs]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common import gpu_peak_mb, gsn_folder, peak_rss_mb, save_result, sync

from lab28.workloads.gsn.labels import HFLIP_PERM, ROT90_CCW_PERM, VFLIP_PERM, encode_counts
from lab28.workloads.gsn.loader import load_gsn, read_labels_csv
from lab28.models import create_model
from lab28.training.averaging import WeightAverage
from lab28.training.device import resolve_device, resolve_precision
from lab28.training.step import TrainStep, graphs_supported
from lab28.training.optim import make_optimizer
from lab28.training.trainer import run_epoch, steps_per_epoch

WARMUP_STEPS = 5


# -- naive reference pipelines -------------------------------------------------------------------------------
class NaivePNGDataset(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.folder = folder
        self.names, self.counts = read_labels_csv(folder / "labels.csv")

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        img = np.asarray(Image.open(self.folder / self.names[i]).convert("RGBA"))[..., 0].astype(np.float32) / 255
        x = torch.from_numpy(img).unsqueeze(0)
        c = self.counts[i].clone()
        if random.random() < 0.5:
            x, c = x.flip(-1), c[list(HFLIP_PERM)]
        if random.random() < 0.5:
            x, c = x.flip(-2), c[list(VFLIP_PERM)]
        if random.random() < 0.5:
            x, c = torch.rot90(x, 1, dims=(-2, -1)), c[list(ROT90_CCW_PERM)]
        return (x - 0.30) / 0.46, c


class NaiveFashionDataset(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])
        if random.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if random.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        img = img.rotate(random.uniform(-90.0, 90.0), resample=Image.Resampling.NEAREST)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).unsqueeze(0)
        return (x - 0.2860) / 0.3530, int(self.labels[i])


def time_naive(model, optimizer, loader, loss_fn, device, steps: int) -> float:
    """Images per second over `steps` batches after WARMUP_STEPS untimed ones."""
    model.train()
    it = iter(loader)
    done, t0 = 0, None
    for step in range(steps + WARMUP_STEPS):
        if step == WARMUP_STEPS:  # the clock starts before the batch is loaded: loading is part of the pipeline
            sync(device)
            t0, done = time.perf_counter(), 0
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += x.shape[0]
    sync(device)
    return done / (time.perf_counter() - t0)


def gsn_loss(out, counts):
    log_probs, pred_counts = out
    return F.nll_loss(log_probs, encode_counts(counts)) + F.smooth_l1_loss(pred_counts, counts.float())


# -- lab28's step ------------------------------------------------------------------------------------------------
def lab28_step(model, task, tc, images, labels, device, steps: int) -> tuple[TrainStep, int, str]:
    """The trainer's own step over the first steps * batch images, built as the trainer builds it (channels_last,
    fused Adam, precision, the weight average where the config has one, torch.compile where it asks for it) and
    warmed up (compiled, or a CUDA graph captured, where the trainer would): the step, its number of batches per
    epoch and its mode."""
    precision = resolve_precision(tc.precision, device)
    tc.progress = False
    model = model.to(device).to(memory_format=torch.channels_last)
    use_graph = graphs_supported(tc, device, precision)
    opt = make_optimizer(model, tc, device, capturable=use_graph)
    gen = torch.Generator(device=device).manual_seed(1)
    n = min(len(images), steps * tc.batch_size)
    images, labels = images[:n].to(device), labels[:n].to(device)
    # The lab preset updates a moving average of the 12.8M weights after every step: part of the trainer's step.
    average = WeightAverage(model, tc.weight_average) if tc.weight_average else None
    step_model = torch.compile(model) if tc.compile else model  # as the trainer compiles it
    train_step = TrainStep(step_model, task, opt, None, images, labels, gen, tc, device, precision,
                           use_graph=use_graph, average=average)
    timed_steps = steps_per_epoch(n, tc.batch_size)
    # Warm-up (and capture) before the clock starts; never more batches than the images hold.
    run_epoch(train_step, None, 0, min(WARMUP_STEPS + 1, timed_steps))
    sync(device)
    return train_step, timed_steps, f"{device.type}/{precision}" + ("/graph" if use_graph else "")


def time_lab28(model, task, tc, images, labels, device, steps: int) -> tuple[float, str]:
    """Images per second of the trainer's own epoch loop over steps * batch images (after a warm-up epoch that
    also captures the CUDA graph where the trainer would use one)."""
    train_step, timed_steps, mode = lab28_step(model, task, tc, images, labels, device, steps)
    t0 = time.perf_counter()
    run_epoch(train_step, None, 1, timed_steps)
    sync(device)
    n = len(train_step.train_x)
    return min(n, timed_steps * tc.batch_size) / (time.perf_counter() - t0), mode


def lab28_figures(model_name: str, task, tc, images, labels, device, steps: int, naive: float) -> dict:
    """lab28's figures against the naive ones; on CUDA also lab28 without its CUDA graph (what the graph adds)."""
    torch.manual_seed(1)
    lab, mode = time_lab28(create_model(model_name), task, tc, images, labels, device, steps)
    result = {"naive_img_per_s": naive, "lab28_img_per_s": lab, "ratio": lab / naive, "lab28_mode": mode}
    if graphs_supported(tc, device, resolve_precision(tc.precision, device)):
        torch.manual_seed(1)
        eager, _ = time_lab28(create_model(model_name), task, replace(tc, cuda_graphs=False), images, labels, device,
                              steps)
        result.update(lab28_eager_img_per_s=eager, graph_gain=lab / eager)
    return result


# -- workloads -----------------------------------------------------------------------------------------------------
def gsn_workload(data: str | None, steps: int, device, cuda_graphs: bool) -> dict:
    from lab28.workloads.gsn.config import preset
    from lab28.workloads.gsn.task import GSNTask

    folder = gsn_folder(data, n=max(2000, steps * 64))
    torch.manual_seed(1)
    model = create_model("shape-classifier").to(device)
    loader = torch.utils.data.DataLoader(NaivePNGDataset(folder), batch_size=64, shuffle=True)
    naive = time_naive(model, torch.optim.Adam(model.parameters(), lr=1e-3), loader, gsn_loss, device, steps)
    cfg = preset("lab", "joint")
    cfg.train.cuda_graphs = cuda_graphs
    d = load_gsn(folder)
    return lab28_figures("shape-classifier", GSNTask(cfg.task, cfg.augment), cfg.train, d.images, d.counts, device,
                         steps, naive)


def fashion_workload(data: str | None, steps: int, device, cuda_graphs: bool) -> dict:
    from lab28.workloads.classify.config import preset
    from lab28.workloads.classify.task import FashionTask

    n = max(4000, steps * 64)
    if data:
        from lab28.data.idx import find_fashion_files, load_idx_pair

        files = find_fashion_files(data, "train")
        if files is None:
            raise SystemExit(f"{data}: no Fashion-MNIST training files")
        images, labels = load_idx_pair(*files)
        images, labels = images[:n], labels[:n]
    else:  # the arithmetic does not depend on what the pixels show
        rng = np.random.default_rng(0)
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    cfg = preset("seed", "simple-cnn")
    cfg.train.cuda_graphs = cuda_graphs
    torch.manual_seed(1)
    model = create_model("simple-cnn").to(device)
    loader = torch.utils.data.DataLoader(NaiveFashionDataset(images, labels), batch_size=64, shuffle=True)
    naive = time_naive(model, torch.optim.AdamW(model.parameters(), lr=3e-4), loader, F.cross_entropy, device, steps)
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return lab28_figures("simple-cnn", FashionTask(cfg.task, cfg.augment), cfg.train, x, y, device, steps, naive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("gsn", "fashion", "both"), default="both")
    parser.add_argument("--data", help="GSN folder (default: 2,000 synthetic images written to a temp folder)")
    parser.add_argument("--fashion-data", help="Fashion-MNIST folder (default: random 28x28 images)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps of batch 64 per pipeline")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="on CUDA, lab28 replays its step from a CUDA graph (opt-in); also times it without")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    results = {}
    if args.workload in ("gsn", "both"):
        results["gsn"] = gsn_workload(args.data, args.steps, device, args.cuda_graphs)
    if args.workload in ("fashion", "both"):
        results["fashion"] = fashion_workload(args.fashion_data, args.steps, device, args.cuda_graphs)
    print(f"Training step, batch 64, device {device}, {torch.get_num_threads()} CPU threads")
    for name, r in results.items():
        print(f"  {name:8s} naive reference pipeline : {r['naive_img_per_s']:9.1f} img/s")
        print(f"  {name:8s} lab28 ({r['lab28_mode']:>11s})    : {r['lab28_img_per_s']:9.1f} img/s")
        print(f"  {name:8s} ratio                    : {r['ratio']:9.2f}x")
        if "graph_gain" in r:
            print(f"  {name:8s} lab28 without CUDA graph  : {r['lab28_eager_img_per_s']:9.1f} img/s "
                  f"(the graph: {r['graph_gain']:.2f}x)")
    gpu = gpu_peak_mb()
    print(f"  peak RSS {peak_rss_mb():.0f} MB" + (f", GPU {gpu:.0f} MB" if gpu else ""))
    save_result("train_throughput", {"workloads": results, "steps": args.steps, "peak_rss_mb": peak_rss_mb(),
                                     "gpu_peak_mb": gpu})


if __name__ == "__main__":
    main()
