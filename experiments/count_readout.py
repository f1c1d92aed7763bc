"""Which counts should a GSN model report: its count head's, or those its class head expects? And does the count
head help to pick the class?

    python experiments/count_readout.py RUN_DIR [RUN_DIR ...] [--weights 0.1,0.3,1]

For each finished GSN run, on its own validation rows (the last val_size rows of its data folder), prints top-1
and the count RMSE of three readouts of the same best weights: the count head (what a joint run's metrics
report under count readout `setting`), the counts expected under the class probabilities (readout `posterior`,
lab28.workloads.gsn.task.posterior_counts) and the predicted class's own counts. Findings: docs/gsn.md, "Reading
the counts".

A second line gives top-1 of a class read from both heads (the task's class readout, GSNTask.class_scores): the
class k that maximises log p(k) - w * |count head - counts(k)|^2, for each weight w of --weights (w = 0 is the class
head alone; a large w approaches the nearest valid configuration to the count head, `reg`'s readout). Findings:
docs/gsn.md, "The protocol track: schedule, averaging and readout".
"""

from __future__ import annotations

import argparse
import dataclasses

from lab28.runs.model import load_run_model
from lab28.workloads.gsn.labels import all_class_counts, encode_counts
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.task import GSNTask, nearest_class, posterior_counts


def _weights(text: str) -> list[float]:
    """--weights: a comma-separated list of numbers >= 0, or a one-line usage error."""
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not all(w >= 0 for w in weights):  # also refuses nan
        raise argparse.ArgumentTypeError(f"weights must be >= 0: {text!r}")
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished GSN run folders (trained on a data folder, not --synth)")
    parser.add_argument("--weights", type=_weights, default="0.1,0.3,1,3",
                        help="comma-separated weights w >= 0 of the count head's squared distance in the two-head "
                             "class readout (joint runs)")
    args = parser.parse_args()
    for run_dir in args.runs:
        run = load_run_model(run_dir, device="cpu", workload="gsn")
        data = load_gsn(run.config.data.path)
        images, counts = data.images[-run.config.data.val_size:], data.counts[-run.config.data.val_size:]
        log_probs, head = run.outputs(GSNTask(run.config.task), images, counts)
        truth = counts.float()

        def rmse(pred):
            return (pred - truth).pow(2).mean().sqrt().item()

        top1 = (log_probs.argmax(1) == encode_counts(counts)).float().mean().item()
        print(f"{run_dir}: {run.config.task.setting}, class-head top-1 {top1:.3f}; "
              f"count RMSE: count head {rmse(head):.3f}, class posterior {rmse(posterior_counts(log_probs)):.3f}, "
              f"predicted class {rmse(all_class_counts().float()[log_probs.argmax(1)]):.3f}")
        if run.config.task.setting != "joint":
            continue  # only a joint run trains both heads
        classes = encode_counts(counts)

        def both_heads_top1(w):
            task = GSNTask(dataclasses.replace(run.config.task, class_readout_weight=w))
            return (task.predict((log_probs, head))[0] == classes).float().mean().item()

        both = ", ".join(f"w {w:g}: {both_heads_top1(w):.3f}" for w in args.weights)
        print(f"    class from both heads, top-1: {both}; nearest to the count head: "
              f"{(nearest_class(head) == classes).float().mean():.3f}")


if __name__ == "__main__":
    main()
