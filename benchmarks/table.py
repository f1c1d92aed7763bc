"""Print the README's benchmark tables (Markdown) from benchmarks/results/*.json: one table per machine
(`<name>.json` from the CPU machine, `<name>-cuda.json` from a GPU machine).

    python benchmarks/table.py
"""

from __future__ import annotations

import json

from common import RESULTS

BENCHMARKS = ("train_throughput", "predict_throughput", "suite_time")


def machine_line(m: dict) -> str:
    where = f"GPU {m['gpu']} (host CPU {m['cpu']}, {m['cores']} cores)" if "gpu" in m else f"{m['cpu']}, {m['cores']} cores"
    return f"Machine: {where}, torch {m['torch']}"


def memory(r: dict) -> str:
    gpu = r.get("gpu_peak_mb")
    return f"{r['peak_rss_mb']:.0f} MB RSS" + (f", {gpu:.0f} MB GPU" if gpu else "")


def rows(results: dict) -> list[str]:
    out = ["| benchmark | figure | value |", "|---|---|---|"]
    if "train_throughput" in results:
        r = results["train_throughput"]
        t = r["machine"]["torch_threads"]
        for name, w in r["workloads"].items():
            out.append(f"| train_throughput, {name} ({t} thread{'s' if t != 1 else ''}) | naive reference pipeline | "
                       f"{w['naive_img_per_s']:,.0f} img/s |")
            out.append(f"| | lab28 ({w['lab28_mode']}) | {w['lab28_img_per_s']:,.0f} img/s |")
            out.append(f"| | ratio | {w['ratio']:.2f}× |")
        out.append(f"| | peak memory | {memory(r)} |")
    if "predict_throughput" in results:
        r = results["predict_throughput"]
        t = r["machine"]["torch_threads"]
        out.append(f"| predict_throughput ({t} thread{'s' if t != 1 else ''}, {r['precision']}) | batch 1000 | "
                   f"{r['batch1000_img_per_s']:,.0f} img/s |")
        out.append(f"| | {r['images']:,} images | {r['seconds_for_images']:.2f} s |")
        out.append(f"| | batch 1, median latency | {r['batch1_median_ms']:.1f} ms |")
        out.append(f"| | peak memory | {memory(r)} |")
    if "suite_time" in results:
        r = results["suite_time"]
        first = next(iter(r["settings"].values()))
        recipe = f"lab preset: {first['recipe']}" if "recipe" in first else "lab preset"
        for name, s in r["settings"].items():
            out.append(f"| suite_time ({recipe}; {r.get('jobs', 1)} at once) | {name}: {s['epochs']} epochs, "
                       f"{s['train_img_per_s_median']:,.0f} img/s, top-1 {s['val_accuracy']:.3f} | "
                       f"{s['runtime_s']:.0f} s |")
        if r.get("total_s"):
            out.append(f"| | total wall-clock | {r['total_s']:.0f} s ({r['total_s'] / 60:.1f} min) |")
        runs = [s for s in r["settings"].values() if "peak_rss_mb" in s]
        if runs:
            peak = {k: max(s.get(k) or 0 for s in runs) for k in ("peak_rss_mb", "gpu_peak_mb")}
            out.append(f"| | peak memory of one run | {memory(peak)} |")
    return out


def main() -> None:
    found = False
    for suffix in ("", "-cuda"):
        results = {}
        for name in BENCHMARKS:
            path = RESULTS / f"{name}{suffix}.json"
            if path.exists():
                results[name] = json.loads(path.read_text())
        if not results:
            continue
        found = True
        print(machine_line(next(iter(results.values()))["machine"]))
        print()
        print("\n".join(rows(results)))
        print()
    if not found:
        raise SystemExit(f"no results in {RESULTS}; run the benchmarks first")


if __name__ == "__main__":
    main()
