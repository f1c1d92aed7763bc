"""What the report of a GSN suite folder says (lab28.runs.report lays out the page), built only from the run folders
inside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab28.errors import Lab28Error
from lab28.workloads.gsn.captions import SETTING_WORDS, setting_title
from lab28.workloads.gsn.figures import SAMPLE_FIGURES
from lab28.workloads.gsn.labels import NUM_CLASSES, NUM_PAIRS, SHAPES
from lab28.workloads.gsn.report_track import gap_section, track_lines
from lab28.runs.report import ReportPage
from lab28.plotting import epoch_axis, plt, save
from lab28.runs.files import (
    NUMBER, TEXT, check_fields, check_numbers, check_run_folder, read_metrics_csv, read_run_summary,
    read_suite, suite_run_names,
)

# What the report reads. Not best.pt: a suite shared without its checkpoints (hundreds of MB) can still be reported.
REQUIRED = ("config.json", "metrics.csv", "final_metrics.json", "confusion.csv", "figures")
# The metrics.csv columns and final_metrics.json / data.json keys the report uses: checked before anything is written.
COLUMNS = ("epoch", "val_accuracy", "val_rmse", "train_loss", "val_loss")
JOINT_COLUMNS = ("train_cls_loss", "train_reg_loss")
VAL_KEYS = ("loss", "accuracy", "macro_f1", "macro_precision", "macro_recall", "pair_accuracy", "rmse", "mae",
            *(f"{kind}_{s}" for s in SHAPES for kind in ("rmse", "mae")))
FINAL_SPEC = {"setting": TEXT, "lam": NUMBER, "val": {k: NUMBER for k in VAL_KEYS},
              "val_tta": {"accuracy": NUMBER, "rmse": NUMBER}, "dead_feature_count": NUMBER, "epochs_run": NUMBER,
              "best_epoch": (NUMBER, None), "runtime_s": NUMBER, "stop_reason": TEXT}
DATA_SPEC = {"source": TEXT, "train_size": NUMBER, "val_size": NUMBER, "val_first": TEXT, "val_last": TEXT}


def check_run(run_dir: Path) -> None:
    """Refuse a run folder that is incomplete, saying what is missing."""
    check_run_folder(run_dir, REQUIRED)


def find_runs(suite_dir: Path) -> list[Path]:
    order = {"cls": 0, "reg": 1, "joint": 2}
    names = suite_run_names(suite_dir, "settings", "config.json")
    runs = sorted((suite_dir / n for n in names), key=lambda p: order.get(p.name, 3))
    for run in runs:
        check_run(run)
    return runs


def read_runs(runs: list[Path]) -> tuple[dict[str, dict], dict[str, dict[str, np.ndarray]]]:
    """(summary, metrics.csv columns) of every run, each file checked for what the report uses."""
    summaries, metrics = {}, {}
    for run in runs:
        summary = read_run_summary(run)
        final = summary["final"]
        if "lam" not in final and "lambda" in final:  # run folders written before the key kept the flag's name
            final["lam"] = final.pop("lambda")
        check_fields(run / "final_metrics.json", final, FINAL_SPEC)
        average = final.get("weight_average")  # absent in runs from before weight averaging
        if average is not None and not (isinstance(average, (int, float)) and 0 <= average < 1):
            raise Lab28Error(f"{run / 'final_metrics.json'}: weight_average must be a number in [0, 1), "
                             f"got {average!r}")
        readout = final.setdefault("class_readout_weight", 0.0)  # absent in runs from before the two-head readout
        if not (isinstance(readout, (int, float)) and not isinstance(readout, bool) and readout >= 0):
            raise Lab28Error(f"{run / 'final_metrics.json'}: class_readout_weight must be a number >= 0, "
                             f"got {readout!r}")
        features = final.setdefault("feature_count", 256)  # absent in runs from before other backbones: the lab's
        if not (isinstance(features, int) and not isinstance(features, bool) and features > 0):
            raise Lab28Error(f"{run / 'final_metrics.json'}: feature_count must be a positive whole number, "
                             f"got {features!r}")
        check_numbers(run / "final_metrics.json", final["val"], "val")  # per-pair accuracies too
        if summary["data"]:
            check_fields(run / "data.json", summary["data"], DATA_SPEC)
        joint = final["setting"] == "joint"
        m = read_metrics_csv(run / "metrics.csv", COLUMNS + (JOINT_COLUMNS if joint else ()))
        best = final["best_epoch"]
        if joint and best is not None and not 1 <= best <= len(m["epoch"]):
            raise Lab28Error(f"{run / 'final_metrics.json'}: best_epoch {best} is not one of the "
                             f"{len(m['epoch'])} epochs in metrics.csv")
        summaries[run.name], metrics[run.name] = summary, m
    return summaries, metrics


def plot_overlaid_curves(metrics: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label, m in metrics.items():
        (line,) = axes[0].plot(m["epoch"], m["val_accuracy"], label=label)
        color = line.get_color()  # one colour per setting in every panel; validation dashed
        axes[1].plot(m["epoch"], m["val_rmse"], color=color, label=label)
        axes[2].plot(m["epoch"], m["train_loss"], color=color, label=f"{label} train")
        axes[2].plot(m["epoch"], m["val_loss"], "--", color=color, label=f"{label} val")
    axes[0].set(ylabel="validation top-1 accuracy", title="Accuracy")
    axes[1].set(ylabel="validation count RMSE", title="Count RMSE")
    axes[2].set(ylabel="loss (own objective)", yscale="log", title="Loss")
    epoch_axis(*axes)
    for ax in axes:
        ax.legend(fontsize=7)
    save(fig, path)


def _fmt(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


def setting_name(run_name: str, final: dict) -> str:
    """How the report names a run: its setting in words (the joint one with its λ), and the run folder's name
    where that is not simply the setting."""
    title = setting_title(final["setting"], final["lam"])
    return title if run_name == final["setting"] else f"{title}, run {run_name}"


def summary(finals: dict[str, dict]) -> list[str]:
    """The best setting by top-1 and the best by count RMSE, with their key numbers, and the chance levels."""
    top = max(finals, key=lambda n: finals[n]["val"]["accuracy"])
    f, v = finals[top], finals[top]["val"]
    lines = [f"- **Best top-1**: {setting_name(top, f)} — {v['accuracy']:.1%} "
             f"({f['val_tta']['accuracy']:.1%} with TTA), macro F1 {v['macro_f1']:.3f}, pair accuracy "
             f"{v['pair_accuracy']:.3f}, count RMSE {v['rmse']:.3f}; best epoch {f['best_epoch']} of {f['epochs_run']}, "
             f"{f['runtime_s'] / 60:.1f} min."]
    counts = min(finals, key=lambda n: finals[n]["val"]["rmse"])
    f, v = finals[counts], finals[counts]["val"]
    lines.append(f"- **Best count RMSE**: {setting_name(counts, f)} — {v['rmse']:.3f} "
                 f"({f['val_tta']['rmse']:.3f} with TTA), MAE {v['mae']:.3f}, top-1 {v['accuracy']:.1%}.")
    lines.append(f"- **Chance**: top-1 1 in {NUM_CLASSES} ({1 / NUM_CLASSES:.1%}), pair accuracy 1 in {NUM_PAIRS} "
                 f"({1 / NUM_PAIRS:.1%}): a uniform guess among the classes and the shape pairs.")
    return lines + ["", "Validation split, best epoch of each run; the tables below have every number."]


# What the report says of a model beside its name; a model missing here is named alone.
MODEL_NOTES = {"shape-classifier": "the lab's fixed backbone with our heads",
               "compact-cnn": "a small pooled CNN with the lab model's heads, not the lab's backbone",
               "counting-resnet": "a small residual network with the lab model's heads",
               "counting-resnet-p4": "lab28's free architecture: a small residual network of quarter-turn "
                                     "convolutions, each filter applied in four orientations, with the lab "
                                     "model's heads",
               "counting-resnet-p4-fullres": "lab28's free architecture, larger: counting-resnet-p4 wider, with a "
                                             "residual block at full resolution and downsampling that keeps the "
                                             "quarter-turn symmetry exact",
               "counting-resnet-p4-symmetric": "lab28's free architecture: counting-resnet-p4-fullres with its heads "
                                               "read in all four orientations, so its answer turns with the image",
               "counting-resnet-p4-local": "lab28's free architecture: counting-resnet-p4-symmetric with a pointwise "
                                           "layer that reads each position's features before they are summed",
               "counting-resnet-p4-gated": "lab28's free architecture: counting-resnet-p4-local with its last maps "
                                           "gated by the whole image's mean features"}


def model_line(configs: dict[str, dict]) -> list[str]:
    """"Model: `name` (what it is)" for the models the runs trained, read from their config.json."""
    names = sorted({c["model"]["name"] for c in configs.values()
                    if isinstance(c.get("model"), dict) and isinstance(c["model"].get("name"), str)})
    if not names:
        return []
    shown = [f"`{n}` ({MODEL_NOTES[n]})" if n in MODEL_NOTES else f"`{n}`" for n in names]
    return [f"Model: {', '.join(shown)}.", ""]


def run_recipes(configs: dict[str, dict]) -> dict[str, dict[str, str]]:
    """The results table's leading columns where the runs differ in more than their setting (runs gathered from
    several tracks, models or seeds into one folder, then `lab28 report FOLDER`): column -> run -> cell. The run's
    folder name, then those of its track (protocol: the training rows; synthetic: fresh synthetic images each
    epoch), model, seed and start that differ between runs; the folder name alone where two runs share a setting
    and λ and nothing else tells their rows apart. A suite of the three settings of one recipe gets none of them."""
    def section(config: dict, name: str) -> dict:  # a malformed config.json shows "?" rather than failing
        value = config.get(name)
        return value if isinstance(value, dict) else {}

    def track(config: dict) -> str:
        return str(section(config, "data").get("track", "protocol"))

    def model(config: dict) -> str:
        return f"`{section(config, 'model').get('name', '?')}`"

    def seed(config: dict) -> str:
        return str(section(config, "train").get("seed", "?"))

    def setting(config: dict) -> tuple[str, str]:
        task = section(config, "task")
        return str(task.get("setting", "?")), str(task.get("lam", "?"))

    def start(config: dict) -> str:
        source = section(config, "train").get("init_from")
        if not (isinstance(source, str) and source):
            return "–"
        path = Path(source)  # a run folder or a .pt file: its last two parts name it (suite/run, run/best.pt)
        return f"`{path.parent.name}/{path.name}`"

    columns = {"track": track, "model": model, "seed": seed, "started from": start}
    cells = {column: {name: describe(config) for name, config in configs.items()}
             for column, describe in columns.items()}
    differing = {column: values for column, values in cells.items() if len(set(values.values())) > 1}
    settings = [setting(config) for config in configs.values()]
    if not differing and len(set(settings)) == len(settings):
        return {}
    return {"run": {name: f"`{name}`" for name in configs}, **differing}


def report_page(suite_dir: str | Path) -> ReportPage:
    """The report's content; every input is read and checked first, so a bad one leaves nothing written."""
    suite = read_suite(suite_dir, find_runs, read_runs)
    runs, summaries, metrics, finals = suite.runs, suite.summaries, suite.metrics, suite.finals
    plot_overlaid_curves(metrics, suite.folder / "figures" / "curves_overlaid.png")
    data_info = summaries[runs[0].name]["data"]
    intro = model_line(suite.configs) + track_lines(suite.configs)
    if data_info:
        intro += [f"Data: `{data_info['source']}` — {data_info['train_size']} training images, "
                  f"{data_info['val_size']} validation images ({data_info['val_first']} … {data_info['val_last']}).", ""]
    recipes = run_recipes(suite.configs)
    lines = ["## Results (validation, best epoch)", "",
              "| " + "".join(f"{column} | " for column in recipes) + "setting | λ | val loss | top-1 | macro F1 | macro P | macro R | pair acc. | RMSE | MAE | top-1 / RMSE with TTA | dead features | epochs (best) | runtime |",
              "|---|" + "---|" * len(recipes) + "---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, f in finals.items():
        v = f["val"]
        lam = f["lam"] if f["setting"] == "joint" else "–"
        lines.append(
            "| " + "".join(f"{cells[name]} | " for cells in recipes.values()) +
            f"{SETTING_WORDS.get(f['setting'], f['setting'])} | {lam} | {_fmt(v['loss'])} | {_fmt(v['accuracy'])} | "
            f"{_fmt(v['macro_f1'])} | {_fmt(v['macro_precision'])} | {_fmt(v['macro_recall'])} | "
            f"{_fmt(v['pair_accuracy'])} | {_fmt(v['rmse'])} | {_fmt(v['mae'])} | "
            f"{_fmt(f['val_tta']['accuracy'])} / {_fmt(f['val_tta']['rmse'])} | {f['dead_feature_count']} / {f['feature_count']} | "
            f"{f['epochs_run']} ({f['best_epoch']}) | {f['runtime_s'] / 60:.1f} min |")
    lines += ["", "Val loss is each setting's own objective (not comparable across settings). In the regression-only "
              "setting the class is the nearest valid configuration (two types, ten shapes) to the predicted counts; in "
              "the classification-only setting the counts are those of the predicted class. Macro averages run over the "
              "classes present in the validation split. TTA: the same weights, answers averaged over the eight flips and "
              "quarter turns with the counts mapped back exactly (lab28.workloads.gsn.tta) — shown beside, not instead of, the "
              "plain numbers.", ""]
    for note in (_readout_note(finals), _averaging_note(finals, metrics)):
        if note:
            lines += [note, ""]
    # The curves come before the per-shape and per-pair tables: the top of the page shows the results table and
    # then a figure, the details follow for whoever wants them.
    lines += ["## Learning curves", "",
              "![validation top-1, count RMSE and loss of every setting](figures/curves_overlaid.png)", "",
              *gap_section(finals, metrics, suite.folder / "figures"),
              "## Per shape and per pair", "",
              "### Count errors per shape", "", "| setting | " + " | ".join(
        f"RMSE {s} | MAE {s}" for s in ("squares", "circles", "up", "right", "down", "left")) + " |",
              "|---|" + "---|" * 12]
    for name, f in finals.items():
        v = f["val"]
        cells = " | ".join(f"{_fmt(v[f'rmse_{s}'])} | {_fmt(v[f'mae_{s}'])}"
                           for s in ("squares", "circles", "up", "right", "down", "left"))
        lines.append(f"| {name} | {cells} |")
    lines += ["", "### Exact accuracy within each true pair", "", "| pair | " + " | ".join(finals) + " |",
              "|---|" + "---|" * len(finals)]
    pairs = sorted({k.split("/", 1)[1] for f in finals.values() for k in f["val"] if k.startswith("pair_exact_accuracy/")})
    for pair in pairs:
        lines.append(f"| {pair} | " + " | ".join(_fmt(f["val"].get(f"pair_exact_accuracy/{pair}")) for f in finals.values()) + " |")
    lines += ["", "## The count loss's weight λ", "", _lambda_note(finals, metrics), ""]
    for run in runs:
        f = finals[run.name]
        name = setting_name(run.name, f)
        lines += [f"## {name[0].upper()}{name[1:]}", "",
                  f"Stopped: {f['stop_reason']}. Best epoch {f['best_epoch']} of {f['epochs_run']}; "
                  f"{f['dead_feature_count']} of {f['feature_count']} backbone features are dead on the validation set.", ""]
        for fig, caption in (("loss.png", "loss"), ("accuracy_rmse.png", "accuracy and RMSE"),
                             ("confusion_pairs.png", "pair confusion"), ("misclassified_pairs.png", "misclassified per pair"),
                             ("confusion_classes.png", "class confusion"), ("dead_neurons.png", "dead neurons")):
            lines.append(f"![{run.name} {caption}]({run.name}/figures/{fig})")
        lines += [f"![{run.name} {caption}]({run.name}/figures/{fig})" for fig, caption in SAMPLE_FIGURES
                  if (run / "figures" / fig).is_file()]  # runs from before prediction_samples.npz have none
        lines.append("")
    return ReportPage(suite, "GSN multitask suite", summary(finals), intro, lines)


def _readout_note(finals: dict) -> str:
    """How the runs that read the class from both heads read it (empty where every run read the class head alone)."""
    both = [f"{name} (w = {f['class_readout_weight']:g})" for name, f in finals.items() if f["class_readout_weight"] > 0]
    if not both:
        return ""
    return (f"Class readout: {', '.join(both)} read the class from both heads, the class k with the largest "
            "log p(k) − w·‖count head − counts(k)‖², so the count head can overrule a close call of the class head "
            "(lab28.workloads.gsn.task); top-1, F1 and early stopping all use that class.")


def _averaging_note(finals: dict, metrics: dict) -> str:
    """What the numbers are of when the runs evaluated a moving average of their weights, and the trained weights'
    own best validation top-1 beside it (from metrics.csv), so that the average's share is visible."""
    averaged = [name for name, f in finals.items() if f.get("weight_average")]
    if not averaged:
        return ""
    own = []
    for name in averaged:
        raw = metrics[name].get("val_raw_accuracy")
        if raw is not None and not np.isnan(raw).all():
            own.append(f"{name} {np.nanmax(raw):.3f}")
    decays = sorted({finals[name]["weight_average"] for name in averaged})
    return ("Weights: every number above is of a moving average of the trained weights (decay "
            f"{', '.join(str(d) for d in decays)} per step, about the last {round(1 / (1 - decays[0]))} Adam steps; "
            "lab28.training.averaging), which is what early stopping watched and best.pt holds. Adam trained as "
            "configured; the average only rides along."
            + (f" Best validation top-1 of the trained weights themselves over the run: {', '.join(own)}." if own else ""))


def _lambda_note(finals: dict, metrics: dict) -> str:
    """The chosen lambda and how much of the joint objective the count term actually was (from metrics.csv)."""
    joint = [name for name, f in finals.items() if f["setting"] == "joint"]
    if not joint:
        return "No joint setting in this suite."
    f = finals[joint[0]]
    lam = f["lam"]
    m = metrics[joint[0]]
    text = f"The joint setting uses λ = {lam}. "
    if f["best_epoch"] is not None:
        best = int(f["best_epoch"]) - 1
        cls_loss, reg_loss = m["train_cls_loss"][best], m["train_reg_loss"][best]
        share = lam * reg_loss / (cls_loss + lam * reg_loss)
        text += (f"At its best epoch the training NLL was {cls_loss:.3f} and the SmoothL1 count loss {reg_loss:.3f}, "
                 f"so the count term made up {share:.0%} of the objective: an auxiliary signal that shapes the shared "
                 "features. ")
    return text + "`--lam` sets λ."
