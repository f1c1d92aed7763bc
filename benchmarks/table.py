"""Print the README's benchmark table (Markdown) from benchmarks/results/*.json.

    python benchmarks/table.py
"""

from __future__ import annotations

import json

from common import RESULTS


def main() -> None:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    if not results:
        raise SystemExit(f"no results in {RESULTS}; run the benchmarks first")
    m = next(iter(results.values()))["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}" + (f", GPU {m['gpu']}" if "gpu" in m else ""))
    print()
    print("| benchmark | figure | value |")
    print("|---|---|---|")
    if "train_throughput" in results:
        r = results["train_throughput"]
        t = r["machine"]["torch_threads"]
        print(f"| train_throughput ({t} threads) | naive PIL + DataLoader pipeline | {r['naive_img_per_s']:.0f} img/s |")
        print(f"| | lab28 ({r['lab28_mode']}) | {r['lab28_img_per_s']:.0f} img/s |")
        print(f"| | ratio | {r['ratio']:.2f}× |")
        print(f"| | peak RSS | {r['peak_rss_mb']:.0f} MB |")
    if "predict_throughput" in results:
        r = results["predict_throughput"]
        t = r["machine"]["torch_threads"]
        print(f"| predict_throughput ({t} threads) | batch 1000 | {r['batch1000_img_per_s']:.0f} img/s |")
        print(f"| | {r['images']:,} images | {r['seconds_for_images']:.1f} s |")
        print(f"| | batch 1, median latency | {r['batch1_median_ms']:.1f} ms |")
        print(f"| | peak RSS | {r['peak_rss_mb']:.0f} MB |")
    if "suite_time" in results:
        r = results["suite_time"]
        for name, s in r["settings"].items():
            print(f"| suite_time (lab preset) | {name}: {s['epochs']} epochs, {s['train_img_per_s_median']:.0f} img/s "
                  f"| {s['runtime_s'] / 60:.1f} min |")
        if r.get("total_s"):
            print(f"| | total wall-clock | {r['total_s'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
