"""Inference from a checkpoint: per-image latency at batch 1 and throughput at batch 1000 (and 10,000 images).

    python benchmarks/predict_throughput.py [--run RUN_DIR] [--images 10000] [--threads N]

Without --run, an untrained shape-classifier is timed (same cost: weights do not change the arithmetic).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from common import gpu_peak_mb, peak_rss_mb, save_result, sync

from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig
from lab28.models import create_model
from lab28.training.config import TrainConfig
from lab28.training.device import resolve_device, resolve_precision
from lab28.training.trainer import predict_outputs


def predict(model, task, images, train_config, device, precision, batch: int) -> None:
    """The engine's evaluation path (what `lab28 eval` and `predict` run) at evaluation batch `batch`."""
    counts = torch.zeros(len(images), 6, dtype=torch.long)  # prepare_batch's second argument; unused here
    predict_outputs(model, task, images, counts, replace(train_config, eval_batch_size=batch), device, precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished GSN run folder")
    parser.add_argument("--images", type=int, default=10000, help="images for the batch-1000 measurement")
    parser.add_argument("--single", type=int, default=50, help="images for the batch-1 latency measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    if args.run:
        from lab28.runs.model import load_run_model

        run = load_run_model(Path(args.run), device, workload="gsn")
        model, task, train_config, precision = run.model, GSNTask(run.config.task), run.config.train, run.precision
    else:
        model, task, train_config = create_model("shape-classifier").to(device), GSNTask(GSNTaskConfig()), TrainConfig()
        model = model.to(memory_format=torch.channels_last)
        precision = resolve_precision("auto", device)
    images = torch.randint(0, 2, (args.images, 1, 28, 28), dtype=torch.uint8) * 255
    predict(model, task, images[:1000], train_config, device, precision, batch=1000)  # warm-up
    t0 = time.perf_counter()
    predict(model, task, images, train_config, device, precision, batch=1000)
    sync(device)
    bulk = time.perf_counter() - t0
    lat = []
    for k in range(args.single):
        t = time.perf_counter()
        predict(model, task, images[k:k + 1], train_config, device, precision, batch=1)
        sync(device)
        lat.append(time.perf_counter() - t)
    lat.sort()
    median_ms = lat[len(lat) // 2] * 1000
    print(f"GSN inference on {device} ({precision}), {torch.get_num_threads()} threads")
    print(f"  batch 1000 : {args.images / bulk:9.1f} img/s   ({args.images} images in {bulk:.2f} s)")
    print(f"  batch 1    : {median_ms:9.2f} ms median latency ({1000 / median_ms:.0f} img/s)")
    print(f"  peak RSS {peak_rss_mb():.0f} MB" + (f", GPU {gpu_peak_mb():.0f} MB" if gpu_peak_mb() else ""))
    save_result("predict_throughput", {"device": str(device), "precision": precision, "images": args.images,
                                       "batch1000_img_per_s": args.images / bulk, "seconds_for_images": bulk,
                                       "batch1_median_ms": median_ms, "peak_rss_mb": peak_rss_mb(),
                                       "gpu_peak_mb": gpu_peak_mb()})


if __name__ == "__main__":
    main()
