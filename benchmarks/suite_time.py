"""Wall-clock of the GSN lab suite per setting and in total, epochs run, images/s.

    python benchmarks/suite_time.py --data GSN_DIR            # runs `lab28 suite gsn --preset lab --jobs 3`, timed
    python benchmarks/suite_time.py --from-suite SUITE_DIR    # reads the figures of a suite that already ran

Figures come from the run folders (metrics.csv, final_metrics.json), which record every epoch's time and each
run's peak memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from common import gpu_peak_mb, peak_rss_mb, save_result


def summarize(suite_dir: Path) -> dict:
    """Per setting: runtime, epochs, median training speed, top-1, and where and with what recipe it ran."""
    rows = {}
    for run in sorted(p for p in suite_dir.iterdir() if (p / "final_metrics.json").exists()):
        final = json.loads((run / "final_metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
        env = json.loads((run / "env.json").read_text())
        epochs = list(csv.DictReader(open(run / "metrics.csv")))
        ips = [float(r["train_images_per_s"]) for r in epochs]
        rows[run.name] = {"runtime_s": final["runtime_s"], "epochs": final["epochs_run"],
                          "train_img_per_s_median": sorted(ips)[len(ips) // 2],
                          "val_accuracy": final["val"]["accuracy"],
                          "device": env.get("device"), "precision": env.get("precision"),
                          "recipe": f"dropout {config['model']['dropout']}, λ {config['task']['lam']}, "
                                    f"patience {config['train']['early_stopping']['patience']}",
                          # each run records its own peak (runs of a --jobs suite live in worker processes)
                          **{k: final[k] for k in ("peak_rss_mb", "gpu_peak_mb", "cuda_graphs") if k in final}}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="GSN folder to run the lab suite on")
    source.add_argument("--from-suite", help="an existing suite folder")
    parser.add_argument("--out", default="runs-bench", help="parent folder for the suite run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--jobs", type=int, default=3, help="settings trained at once (as `lab28 suite --jobs`)")
    parser.add_argument("--cuda-graphs", choices=("true", "false"), default="false",
                        help="replay the training step from a CUDA graph on CUDA (as `--cuda-graphs`)")
    args = parser.parse_args()
    total = None
    if args.data:
        from lab28.workloads.gsn.config import preset
        from lab28.workloads.gsn.suite import run_gsn_suite

        cfg = preset("lab")
        cfg.data.path, cfg.train.threads = args.data, args.threads
        cfg.train.cuda_graphs = args.cuda_graphs == "true"
        t0 = time.perf_counter()
        suite_dir = run_gsn_suite(cfg, args.out, name="gsn-suite-lab-bench", jobs=args.jobs)
        total = time.perf_counter() - t0
    else:
        suite_dir = Path(args.from_suite)
        info = json.loads((suite_dir / "suite.json").read_text())
        total, args.jobs = info.get("total_runtime_s"), info.get("jobs", 1)
    rows = summarize(suite_dir)
    print(f"GSN lab suite: {suite_dir}")
    for name, r in rows.items():
        print(f"  {name:6s} {r['runtime_s']:7.1f} s  {r['epochs']:3d} epochs  "
              f"{r['train_img_per_s_median']:7.1f} img/s (median epoch)  top-1 {r['val_accuracy']:.3f}")
    if total is not None:
        print(f"  total  {total:7.1f} s ({total / 60:.1f} min)")
    save_result("suite_time", {"suite": str(suite_dir), "settings": rows, "total_s": total, "jobs": args.jobs,
                               "peak_rss_mb": peak_rss_mb(), "gpu_peak_mb": gpu_peak_mb()})


if __name__ == "__main__":
    main()
