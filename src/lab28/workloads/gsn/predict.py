"""GSN predictions on new images: class, pair and the six counts per image (lab28.workloads.base.Predictor).

Which head the counts come from follows the run's setting and count readout, exactly as GSNTask.predict (and so
the run's own metrics) defines it:
- `reg`: the count head (the only one trained); the class is the valid configuration nearest to those counts, and
  top-k lists the next-nearest ones without a probability (the class head was never trained, so its
  probabilities would mean nothing);
- `cls` and `joint` with count readout `posterior` (the presets'): the class from the class head, the counts
  expected under its probabilities (counts_from "class_posterior"), which may be fractional;
- `joint` with a class readout weight (the lab preset's) reads the class from both heads (GSNTask.class_scores);
  top-k is ranked that way and shows each class's probability under the class head;
- with count readout `setting`, `cls`: the counts are the predicted class's own (counts_from "class_head");
  `joint`: they come from the count head (counts_from "count_head"), so the two heads can disagree (the counts
  need not be the predicted class's), which `counts_from` makes visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lab28.data.png import read_png
from lab28.runs.model import LoadedRun, RunPredictor, as_image_batch, load_run_model
from lab28.workloads.gsn.labels import SHAPES, all_class_counts, class_name, pair_name
from lab28.workloads.gsn.task import GSNTask


class GSNPredictor(RunPredictor):
    """A finished GSN run's best weights; records: class, class_name, pair, counts {shape: count}, counts_from
    ("count_head" | "class_head" | "class_posterior"), top_k [(class name, probability or None), ...]."""

    def __init__(self, run: LoadedRun, top_k: int = 3):
        super().__init__(run, top_k)
        self.task = GSNTask(run.config.task)

    @property
    def counts_from(self) -> str:
        return self.task.counts_source()

    @property
    def columns(self) -> list[str]:
        top = [f"top{k + 1}_{part}" for k in range(self.top_k) for part in ("class_name", "prob")]
        return ["class", "class_name", "pair", *[f"count_{s}" for s in SHAPES], *top, "counts_from"]

    def read_png(self, path: Path) -> np.ndarray:
        return read_png(path, channel="R")  # GSN images are drawn in colour; the red channel holds the shapes

    def predict(self, images) -> list[dict]:
        x = as_image_batch(images)
        if x.shape[0] == 0:
            return []
        log_probs, counts = self.run.outputs(self.task, x, torch.zeros(x.shape[0], len(SHAPES), dtype=torch.long))
        classes, pred_counts = self.task.predict((log_probs, counts))
        k = min(self.top_k, log_probs.shape[1])
        if self.config.task.setting == "reg":
            distance = torch.cdist(pred_counts.float(), all_class_counts().float())
            top_c = torch.argsort(distance, dim=1, stable=True)[:, :k]  # the first one is nearest_class's answer
            top_p = None
        else:
            # Ranked as the class is read (with the count head too where the run reads both), each with its
            # class-head probability, so the first entry is always the predicted class.
            top_c = self.task.class_scores((log_probs, counts)).topk(k, dim=1).indices
            top_p = log_probs.exp().gather(1, top_c)
        records = []
        for i in range(x.shape[0]):
            c = int(classes[i])
            top = [(class_name(int(top_c[i, j])), None if top_p is None else float(top_p[i, j])) for j in range(k)]
            records.append({"class": c, "class_name": class_name(c), "pair": pair_name(c // 9),
                            "counts": dict(zip(SHAPES, pred_counts[i].tolist())), "counts_from": self.counts_from,
                            "top_k": top})
        return records

    def row(self, record: dict) -> list:
        top = [cell for name, p in record["top_k"] for cell in (name, "" if p is None else f"{p:.4f}")]
        return [record["class"], record["class_name"], record["pair"],
                *[f"{record['counts'][s]:.3f}" for s in SHAPES], *top, record["counts_from"]]


def load_predictor(run_dir: str | Path, device: str = "auto") -> GSNPredictor:
    return GSNPredictor(load_run_model(run_dir, device, workload="gsn"))

