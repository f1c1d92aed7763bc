"""Figures of one classification run (MNIST family) and what the report of a suite says (lab28.runs.report lays out
the page), drawn only from run folders. Class names and the data set's title come from the spec named in each run's
config.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lab28.data.specs import IdxSpec, idx_spec
from lab28.errors import Lab28Error
from lab28.workloads.classify.data import DEFAULT_DATASET
from lab28.runs.files import (
    NUMBER, TEXT, check_fields, check_numbers, check_run_folder, read_matrix, read_metrics_csv,
    figures_folder, read_run_summary, read_suite, suite_run_names,
)
from lab28.runs.report import ReportPage
from lab28.plotting import drawable, epoch_axis, image_grid, plt, save
from lab28.runs.samples import ROWS, SAMPLES_FILE, Column, read_samples

# What the report reads (not best.pt: a suite shared without its checkpoints can still be reported).
REQUIRED = ("config.json", "metrics.csv", "final_metrics.json", "confusion.csv", SAMPLES_FILE)
RUN_FIGURES = ("curves.png", "confusion.png", "predictions.png")
# The metrics.csv columns and final_metrics.json / data.json keys the report uses: checked before anything is written.
COLUMNS = ("epoch", "val_accuracy", "train_loss", "val_loss")
SPLIT_SPEC = {"accuracy": NUMBER, "macro_f1": NUMBER, "macro_precision": NUMBER, "macro_recall": NUMBER}
FINAL_SPEC = {"val": SPLIT_SPEC, "test": (SPLIT_SPEC, None), "test_note": TEXT, "params": NUMBER, "epochs_run": NUMBER,
              "best_epoch": (NUMBER, None), "runtime_s": NUMBER, "stop_reason": TEXT}
DATA_SPEC = {"source": TEXT, "train_size": NUMBER, "val_size": NUMBER, "val_indices_md5": TEXT}


def run_spec(config: dict) -> IdxSpec:
    """The data set of a run from its config.json contents (runs made before the setting existed: Fashion-MNIST)."""
    data = config.get("data") if isinstance(config, dict) else None
    return idx_spec(data.get("dataset", DEFAULT_DATASET) if isinstance(data, dict) else DEFAULT_DATASET)


# -- one run -------------------------------------------------------------------------------------------------
def plot_curves(m: dict[str, np.ndarray], path: Path, title: str = "") -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(m["epoch"], m["train_loss"], label="train (objective)")
    a1.plot(m["epoch"], m["val_loss"], label="validation (objective)")
    if "val_nll" in m:  # label smoothing on: also show the plain cross-entropy
        a1.plot(m["epoch"], m["val_nll"], "--", label="validation NLL")
    a1.set(ylabel="loss", title="Loss")
    a1.legend()
    a2.plot(m["epoch"], m["val_accuracy"], label="accuracy")
    a2.plot(m["epoch"], m["val_macro_f1"], "--", label="macro F1")
    a2.set(ylabel="validation score", title="Validation accuracy and macro F1")
    a2.legend()
    epoch_axis(a1, a2)
    if title:
        fig.suptitle(title)
    save(fig, path)


def plot_confusion(cm: np.ndarray, path: Path, class_names: tuple[str, ...], title: str = "") -> None:
    """Colour = share of the true class (row), text = image count: readable whatever the split size."""
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    labels = [drawable(n) for n in class_names]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "Confusion matrix")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    save(fig, path)


SAMPLE_COLUMNS = {"confidence": Column("f", (ROWS,), 0.0, 1.0), "class_names": Column("U", (None,))}


def plot_prediction_grid(npz_path: Path, path: Path, title: str = "", cols: int = 6) -> None:
    """Validation images with true and predicted class (named as the file's class_names); mistakes in red."""
    z = read_samples(npz_path, SAMPLE_COLUMNS)
    true, pred, conf = z["true"], z["pred"], z["confidence"]
    names = [drawable(str(n)) for n in z["class_names"]]
    if len(true) and max(true.max(), pred.max()) >= len(names):
        raise Lab28Error(f"{npz_path}: a class index is beyond the {len(names)} class_names")
    captions = [f"true: {names[t]}\npred: {names[p]} ({c:.0%})" for t, p, c in zip(true, pred, conf)]
    errors = int((true != pred).sum())
    image_grid(z["images"], captions, path, title or f"Validation predictions: {errors} of {len(true)} shown are "
               "wrong (red); mistakes are over-sampled", cols=cols, wrong=true != pred)


def draw_run_figures(run_dir: str | Path) -> list[Path]:
    """curves.png, confusion.png (validation; confusion_test.png too when there is a test set), predictions.png."""
    run_dir, out, final = figures_folder(run_dir)
    classes = run_spec(json.loads((run_dir / "config.json").read_text())).class_names
    name = final.get("model", run_dir.name)
    title = name if run_dir.name == name else f"{run_dir.name} ({name})"  # a suite's folders are named by model
    plot_curves(read_metrics_csv(run_dir / "metrics.csv"), out / "curves.png", title)
    plot_confusion(read_matrix(run_dir / "confusion.csv"), out / "confusion.png", classes,
                   f"{name}: validation confusion (best epoch)")
    plot_prediction_grid(run_dir / SAMPLES_FILE, out / "predictions.png")
    paths = [out / f for f in RUN_FIGURES]
    if (run_dir / "confusion_test.csv").exists():
        plot_confusion(read_matrix(run_dir / "confusion_test.csv"), out / "confusion_test.png", classes,
                       f"{name}: test confusion")
        paths.append(out / "confusion_test.png")
    return paths


# -- suite report --------------------------------------------------------------------------------------------
def find_runs(suite_dir: Path) -> list[Path]:
    """The suite's run folders (in suite.json order), each checked for completeness."""
    runs = [suite_dir / n for n in suite_run_names(suite_dir, "runs", "final_metrics.json")]
    for run in runs:
        check_run_folder(run, REQUIRED)
    return runs


def read_runs(runs: list[Path]) -> tuple[dict[str, dict], dict[str, dict[str, np.ndarray]]]:
    """(summary, metrics.csv columns) of every run, each file checked for what the report uses."""
    summaries, metrics = {}, {}
    for run in runs:
        summary = read_run_summary(run)
        path = run / "final_metrics.json"
        check_fields(path, summary["final"], FINAL_SPEC)
        for split in ("val", "test"):  # per-class scores too
            check_numbers(path, summary["final"][split] or {}, split)
        if summary["data"]:
            check_fields(run / "data.json", summary["data"], DATA_SPEC)
        summaries[run.name], metrics[run.name] = summary, read_metrics_csv(run / "metrics.csv", COLUMNS)
    return summaries, metrics


def plot_overlaid_curves(metrics: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    for name, m in metrics.items():
        line = a1.plot(m["epoch"], m["val_accuracy"], label=name)[0]
        a2.plot(m["epoch"], m["train_loss"], "--", color=line.get_color(), label=f"{name} train")
        a2.plot(m["epoch"], m["val_loss"], color=line.get_color(), label=f"{name} val")
    a1.set(ylabel="validation accuracy", title="Validation accuracy")
    a2.set(ylabel="loss (training objective)", title="Loss")
    epoch_axis(a1, a2)
    a1.legend(fontsize=8)
    a2.legend(fontsize=7)
    save(fig, path)


def _fmt(v, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def per_class_table(finals: dict[str, dict], split: str, class_names: tuple[str, ...]) -> list[str]:
    """One row per class; for each model P, R and F1 columns, prefixed with the model name."""
    names = list(finals)
    header = "| class | " + " | ".join(f"{n} P | {n} R | {n} F1" for n in names) + " | support |"
    lines = [header, "|---|" + "---:|" * (3 * len(names) + 1)]
    for cls in class_names:
        cells = []
        for n in names:
            m = finals[n][split]
            cells += [_fmt(m.get(f"precision/{cls}"), 3), _fmt(m.get(f"recall/{cls}"), 3), _fmt(m.get(f"f1/{cls}"), 3)]
        support = finals[names[0]][split].get(f"support/{cls}")
        lines.append(f"| {cls} | " + " | ".join(cells) + f" | {support} |")
    macro = []
    for n in names:
        m = finals[n][split]
        macro += [_fmt(m["macro_precision"], 3), _fmt(m["macro_recall"], 3), _fmt(m["macro_f1"], 3)]
    lines.append("| **macro** | " + " | ".join(macro) + " | |")
    return lines


def summary(finals: dict[str, dict], class_count: int) -> list[str]:
    """The best model by validation accuracy (what chose the best epochs too), its key numbers, the others' accuracy,
    and the chance level."""
    best = max(finals, key=lambda n: finals[n]["val"]["accuracy"])
    f = finals[best]
    text = (f"- **Best model**: {best} — validation accuracy {f['val']['accuracy']:.2%}, macro F1 "
            f"{f['val']['macro_f1']:.3f}")
    if f["test"] is not None:
        text += f"; test accuracy {f['test']['accuracy']:.2%}, macro F1 {f['test']['macro_f1']:.3f}"
    lines = [text + f"; {f['params']:,} parameters, best epoch {f['best_epoch']} of {f['epochs_run']}, "
                    f"{_duration(f['runtime_s'])}."]
    others = sorted((n for n in finals if n != best), key=lambda n: -finals[n]["val"]["accuracy"])
    if others:
        lines.append("- **Others** (validation accuracy): "
                     + ", ".join(f"{n} {finals[n]['val']['accuracy']:.2%}" for n in others) + ".")
    lines.append(f"- **Chance**: 1 in {class_count} ({1 / class_count:.1%}) for a uniform guess among the classes.")
    return lines


def report_title(data_title: str, runs: list[Path]) -> str:
    if len(runs) == 1:
        return f"{data_title}: {runs[0].name}"
    return f"{data_title}: {len(runs)} models compared"


def report_page(suite_dir: str | Path) -> ReportPage:
    """The report's content; every input is read and checked first, so a bad one leaves nothing written."""
    suite = read_suite(suite_dir, find_runs, read_runs)
    suite_dir, runs, summaries, metrics, finals = suite.folder, suite.runs, suite.summaries, suite.metrics, suite.finals
    specs = {name: run_spec(cfg) for name, cfg in suite.configs.items()}
    spec = next(iter(specs.values()))
    if any(s.name != spec.name for s in specs.values()):  # one per-class table cannot mix two label sets
        raise Lab28Error(f"{suite_dir}: the runs use different data sets "
                         f"({', '.join(f'{n}: {s.name}' for n, s in specs.items())}); a report compares one")
    plot_overlaid_curves(metrics, suite_dir / "figures" / "curves_overlaid.png")
    data = summaries[runs[0].name]["data"]
    has_test = all(f["test"] is not None for f in finals.values())
    intro = []
    if data:
        intro += [f"Data: `{data['source']}` — {data['train_size']} training images, {data['val_size']} validation "
                  f"images (stratified split of the training files, md5 of the rows {data['val_indices_md5'][:12]}).", ""]
    if has_test:
        intro += [f"Test set: {data.get('test_note') or next(iter(finals.values()))['test_note']}. It was used once, "
                  "for the final evaluation of each best checkpoint; model selection used validation only.", ""]
    else:
        notes = sorted({f["test_note"] for f in finals.values() if f["test"] is None})
        intro += ["**No test-set results.** " + " ".join(notes) + ". Every number below is a *validation* "
                  "number, on images carved from the training files that also chose the best epoch, so it is "
                  "optimistic; it is not a test accuracy.", ""]
    head = "| model | parameters | val accuracy | val macro F1 |"
    rule = "|---|---:|---:|---:|"
    if has_test:
        head, rule = head + " test accuracy | test macro F1 |", rule + "---:|---:|"
    lines = ["## Overall", "", head + " epochs (best) | runtime |", rule + "---:|---:|"]
    for name, f in finals.items():
        row = f"| {name} | {f['params']:,} | {_fmt(f['val']['accuracy'])} | {_fmt(f['val']['macro_f1'])} |"
        if has_test:
            row += f" {_fmt(f['test']['accuracy'])} | {_fmt(f['test']['macro_f1'])} |"
        lines.append(row + f" {f['epochs_run']} ({f['best_epoch']}) | {_duration(f['runtime_s'])} |")
    lines += ["", "Macro averages run over the classes present in the split. P, R and F1 below are computed per "
              "class from the confusion matrix (precision from its column, recall from its row).", ""]
    for split in (("test",) if has_test else ()) + ("val",):
        title = "test set" if split == "test" else "validation split"
        lines += [f"## Per-class precision (P), recall (R) and F1 — {title}", ""] + per_class_table(finals, split, spec.class_names) + [""]
    lines += ["## Learning curves", "", "![learning curves](figures/curves_overlaid.png)", "",
              "## Confusion matrices (validation, best epoch)", ""]
    lines += [f"![{r.name} confusion]({r.name}/figures/confusion.png)" for r in runs] + [""]
    if has_test:
        lines += ["## Confusion matrices (test)", ""]
        lines += [f"![{r.name} test confusion]({r.name}/figures/confusion_test.png)" for r in runs] + [""]
    lines += ["## Prediction grids (validation; mistakes in red, over-sampled)", ""]
    lines += [f"![{r.name} predictions]({r.name}/figures/predictions.png)" for r in runs] + [""]
    lines += ["## Runs", ""]
    for r in runs:
        f = finals[r.name]
        tb = f" TensorBoard: `tensorboard --logdir {r.name}/tensorboard`." if (r / "tensorboard").is_dir() else ""
        lines += [f"**{r.name}**: {f['stop_reason']}; best epoch {f['best_epoch']} of {f['epochs_run']}.{tb}", "",
                  f"![{r.name} curves]({r.name}/figures/curves.png)", ""]
    return ReportPage(suite, report_title(spec.title, runs), summary(finals, len(spec.class_names)), intro,
                      lines + [""])
