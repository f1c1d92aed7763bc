"""Training throughput: lab28's GSN training step vs a naive reference pipeline, same model, same files, same process.

Naive reference (what a typical notebook does): a torch Dataset that opens each PNG with PIL in __getitem__,
per-sample augmentation in Python, DataLoader(batch_size=64, shuffle=True), fp32, default Adam, NCHW.
lab28: the data set decoded once into a uint8 tensor, batches as index slices, batched label-aware augmentation,
fused Adam, channels_last, precision auto — exactly the trainer's step (lab28.train.trainer._train_epoch).

    python benchmarks/train_throughput.py [--data GSN_DIR] [--steps 60] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common import gsn_folder, peak_rss_mb, save_result

from lab28.gsn.config import preset
from lab28.gsn.labels import HFLIP_PERM, ROT90_CCW_PERM, VFLIP_PERM, encode_counts
from lab28.gsn.loader import load_gsn, read_labels_csv
from lab28.gsn.task import GSNTask
from lab28.models import create_model
from lab28.train.config import TrainConfig
from lab28.train.device import resolve_device, resolve_precision
from lab28.train.trainer import _train_epoch, make_optimizer


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


def naive(folder, steps: int) -> float:
    torch.manual_seed(1)
    model = create_model("shape-classifier")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(NaivePNGDataset(folder), batch_size=64, shuffle=True)
    it = iter(loader)
    done, t0 = 0, None
    for step in range(steps + 5):
        try:
            x, c = next(it)
        except StopIteration:
            it = iter(loader)
            x, c = next(it)
        if step == 5:
            t0, done = time.perf_counter(), 0
        lp, pc = model(x)
        loss = F.nll_loss(lp, encode_counts(c)) + F.smooth_l1_loss(pc, c.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += x.shape[0]
    return done / (time.perf_counter() - t0)


def lab28_pipeline(folder, steps: int) -> tuple[float, str]:
    data = load_gsn(folder)
    cfg = preset("lab", "joint")
    tc: TrainConfig = cfg.train
    tc.progress = False
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    torch.manual_seed(1)
    model = create_model("shape-classifier").to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, tc, device)
    task = GSNTask(cfg.task, cfg.augment)
    gen = torch.Generator(device=device).manual_seed(1)
    images, counts = data.images.to(device), data.counts.to(device)
    n = min(len(data), steps * tc.batch_size)
    warm = 5 * tc.batch_size
    _train_epoch(model, task, opt, None, None, images[:warm], counts[:warm], gen, tc, device, precision, 0, 5)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    _train_epoch(model, task, opt, None, None, images[:n], counts[:n], gen, tc, device, precision, 1,
                 (n + tc.batch_size - 1) // tc.batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), f"{device}/{precision}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="GSN folder (default: 2,000 synthetic images written to a temp folder)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps of batch 64 per pipeline")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = gsn_folder(args.data, n=max(2000, args.steps * 64))
    naive_ips = naive(folder, args.steps)
    lab_ips, mode = lab28_pipeline(folder, args.steps)
    ratio = lab_ips / naive_ips
    print(f"GSN lab-protocol training step, batch 64, {torch.get_num_threads()} threads")
    print(f"  naive reference pipeline : {naive_ips:8.1f} img/s")
    print(f"  lab28 ({mode:>12}) : {lab_ips:8.1f} img/s")
    print(f"  ratio                    : {ratio:8.2f}x   peak RSS {peak_rss_mb():.0f} MB")
    save_result("train_throughput", {"naive_img_per_s": naive_ips, "lab28_img_per_s": lab_ips, "ratio": ratio,
                                     "lab28_mode": mode, "steps": args.steps, "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
