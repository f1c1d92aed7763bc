"""Print the README's benchmark tables (Markdown) from benchmarks/results/*.json: one table per machine
(`<name>.json` from the CPU machine, `<name>-cuda.json` from a GPU machine).

    python benchmarks/table.py
"""

from __future__ import annotations

import json

from common import RESULTS

BENCHMARKS = ("step_roofline", "train_throughput", "predict_throughput", "suite_time")


def machine_line(m: dict) -> str:
    where = f"GPU {m['gpu']} (host CPU {m['cpu']}, {m['cores']} cores)" if "gpu" in m else f"{m['cpu']}, {m['cores']} cores"
    return f"Machine: {where}, torch {m['torch']}"


def memory(r: dict) -> str:
    gpu = r.get("gpu_peak_mb")
    return f"{r['peak_rss_mb']:.0f} MB RSS" + (f", {gpu:.0f} MB GPU" if gpu else "")


def threads(r: dict) -> str:
    t = r["machine"]["torch_threads"]
    return f"{t} thread{'s' if t != 1 else ''}"


def roofline_rows(r: dict) -> list[str]:
    """The matmul peaks, the step's FLOPs and each pipeline as img/s and as a fraction of its precision's peak."""
    out = [f"| step_roofline, gsn {r['model']} batch {r['batch_size']} ({threads(r)}, load {r['load_avg']:.1f}) | "
           f"FLOPs per image, forward + backward | {r['flops_per_image']['train'] / 1e6:.1f} MFLOP |"]
    for name, p in r["peak"].items():
        note = " (emulated: no bf16 units)" if p.get("emulated") else ""
        out.append(f"| | matmul peak, {name}{note} | {p['gflops']:,.1f} GFLOP/s |")
    labels = {"bare_fp32": "bare step", "bare_bf16": "bare step", "lab28": "lab28 trainer step",
              "naive": "naive reference pipeline"}
    for key, label in labels.items():
        g = r["figures"].get(key)
        if g is None:  # only the bf16 bare step is ever left out
            out.append(f"| | {label} (bf16) | skipped: no bf16 units |")
            continue
        share = f", {g['of_peak']:.0%} of the {g['precision']} peak" if "of_peak" in g else ""
        out.append(f"| | {label} ({g['precision']}) | {g['img_per_s']:,.0f} img/s{share} |")
    return out


def profile_rows(r: dict) -> list[str]:
    """The trainer step's top operators by self CPU time, then the counted operators' FLOP rates
    (step_roofline.py --profile)."""
    out = ["| operator | share of self CPU time | ms per step | calls per step |", "|---|---|---|---|"]
    for p in r["profile"]["top"]:
        out.append(f"| `{p['op']}` | {p['share']:.0%} | {p['self_ms_per_step']:.1f} | {p['calls_per_step']:g} |")
    out += ["", "| operator (children included) | MFLOP per image | ms per step | GFLOP/s |", "|---|---|---|---|"]
    for p in r["profile"]["rates"]:
        out.append(f"| `{p['op']}` | {p['mflop_per_image']:.1f} | {p['ms_per_step']:.1f} | {p['gflops']:.1f} |")
    return out


def rows(results: dict) -> list[str]:
    out = ["| benchmark | figure | value |", "|---|---|---|"]
    if "step_roofline" in results:
        out += roofline_rows(results["step_roofline"])
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
        if (results.get("step_roofline") or {}).get("profile"):
            r = results["step_roofline"]
            print(f"Trainer step ({r['figures']['lab28']['precision']}, {threads(r)}), top operators by self CPU time:")
            print()
            print("\n".join(profile_rows(r)))
            print()
    if not found:
        raise SystemExit(f"no results in {RESULTS}; run the benchmarks first")


if __name__ == "__main__":
    main()
