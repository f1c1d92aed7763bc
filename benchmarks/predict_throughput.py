"""Inference from a checkpoint: per-image latency at batch 1 and throughput at batch 1000 (and 10,000 images).

    python benchmarks/predict_throughput.py [--run RUN_DIR] [--images 10000] [--threads N]

Without --run, an untrained shape-classifier is timed (same cost: weights do not change the arithmetic).
"""

from __future__ import annotations

import argparse
import time

import torch

from common import gpu_peak_mb, peak_rss_mb, save_result, sync

from lab28.workloads.gsn.predict import predict_images
from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig
from lab28.models import create_model
from lab28.training.device import resolve_device, resolve_precision


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
        from lab28.workloads.gsn.evaluate import load_run_model

        model, config = load_run_model(__import__("pathlib").Path(args.run), device)
        task = GSNTask(config.task)
    else:
        model, task = create_model("shape-classifier").to(device), GSNTask(GSNTaskConfig())
    model = model.to(memory_format=torch.channels_last)
    precision = resolve_precision("auto", device)
    images = torch.randint(0, 2, (args.images, 1, 28, 28), dtype=torch.uint8) * 255
    predict_images(model, task, images[:1000], device, precision)  # warm-up
    t0 = time.perf_counter()
    predict_images(model, task, images, device, precision, batch=1000)
    sync(device)
    bulk = time.perf_counter() - t0
    lat = []
    for k in range(args.single):
        t = time.perf_counter()
        predict_images(model, task, images[k:k + 1], device, precision, batch=1)
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
