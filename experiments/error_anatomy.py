"""Which of a GSN model's errors could a better model avoid?

    python experiments/error_anatomy.py RUN_DIR [--images 20000] [--seed 12345] [--bayes-images 2000000] [--threads N]

Two shapes of one kind on one reference pixel XOR to nothing, and then no model can tell which kind lost the pair
(experiments/cancellation_ceiling.py). Such an error has a signature: the pair of kinds is right and one count is
two too high, the other two too low. This script sorts a finished run's errors two ways:

- on its own real validation rows, by that signature: the pair wrong, the pair right with the counts off by one
  shape, or off by two (where a lost pair is the likely cause; the scene behind a real image is not known);
- on `--images` fresh synthetic scenes, whose every shape is known: the images that lost a pair to XOR, where the
  model's answer is set beside the Bayes-optimal one (the true counts most often behind what is visible, from
  `--bayes-images` sampled scenes), and the others, where no error is forced by a lost pair.

Findings: docs/gsn.md, "What the free model still gets wrong".
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from cancellation_ceiling import lost_pair_answers, visible_counts
from lab28.runs.model import load_run_model
from lab28.workloads.gsn.labels import decode_classes, encode_counts
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.synth import draw_scenes, sample_scenes
from lab28.workloads.gsn.task import GSNTask


def error_kinds(truth: torch.Tensor, predicted: torch.Tensor) -> Counter:
    """How many predicted count vectors (N x 6) miss the true ones in each way: "pair" (another pair of kinds),
    "off by 1", "off by 2", ... (the right pair, the largest count error that many shapes)."""
    wrong = (truth != predicted).any(dim=1)
    same_pair = ((truth > 0) == (predicted > 0)).all(dim=1)
    largest = (truth - predicted).abs().max(dim=1).values
    kinds = Counter()
    for is_same_pair, off in zip(same_pair[wrong].tolist(), largest[wrong].tolist()):
        kinds[f"off by {off}" if is_same_pair else "pair"] += 1
    return kinds


def predicted_counts(run, images: torch.Tensor) -> torch.Tensor:
    """The counts of the class the run's model ranks first, for uint8 images N x 1 x 28 x 28."""
    log_probs, _ = run.outputs(GSNTask(run.config.task), images, torch.zeros(len(images), 6, dtype=torch.long))
    return decode_classes(log_probs.argmax(dim=1))


def describe(kinds: Counter, images: int) -> str:
    order = sorted(kinds, key=lambda k: (k == "pair", k))
    return ", ".join(f"{k} {kinds[k]} ({kinds[k] / images:.1%})" for k in order) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished GSN run folder trained on a data folder")
    parser.add_argument("--images", type=int, default=20_000, help="fresh synthetic scenes to sort errors on")
    parser.add_argument("--seed", type=int, default=12345, help="seed of those scenes")
    parser.add_argument("--bayes-images", type=int, default=2_000_000,
                        help="scenes sampled for the Bayes-optimal answer to each visible count vector")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the model (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    run = load_run_model(args.run, device="cpu", workload="gsn")
    if not run.config.data.path:
        parser.error(f"{args.run} trained on generated images (--synth): it has no real validation rows to sort")

    data = load_gsn(run.config.data.path)
    val = run.config.data.val_size
    truth = data.counts[-val:]
    predicted = predicted_counts(run, data.images[-val:])
    wrong = int((truth != predicted).any(dim=1).sum())
    print(f"real validation rows ({val}): top-1 {1 - wrong / val:.3f}; {wrong} errors: "
          f"{describe(error_kinds(truth, predicted), val)}")

    counts, kinds, anchors = sample_scenes(np.random.default_rng(args.seed), args.images)
    images = torch.from_numpy(draw_scenes(kinds, anchors)).unsqueeze(1)
    truth = torch.from_numpy(counts)
    predicted = predicted_counts(run, images)
    right = (predicted == truth).all(dim=1)
    visible = visible_counts(kinds, anchors)
    lost_rows = (visible != counts).any(axis=1)
    lost = torch.from_numpy(lost_rows)
    answers, _, _ = lost_pair_answers(np.random.default_rng(args.seed + 1), args.bayes_images)
    # a visible vector the sampled scenes never showed has no Bayes answer here: counted as one Bayes gets wrong
    bayes = torch.tensor([answers.get(tuple(v)) == tuple(c) for v, c in zip(visible[lost_rows], counts[lost_rows])])
    n, n_lost = args.images, int(lost.sum())
    print(f"synthetic scenes ({n}, seed {args.seed}): top-1 {right.float().mean():.3f}; "
          f"{int((~right).sum())} errors: {describe(error_kinds(truth[~right], predicted[~right]), n)}")
    print(f"  lost a pair to XOR: {n_lost} ({n_lost / n:.1%}); the model gets {int(right[lost].sum())} right, the "
          f"Bayes-optimal answer {int(bayes.sum())} (from {args.bayes_images:,} sampled scenes); model errors there: "
          f"{describe(error_kinds(truth[lost & ~right], predicted[lost & ~right]), n)}")
    clean = ~lost
    print(f"  every shape visible: {int(clean.sum())}; the model gets {int(right[clean].sum())} right "
          f"(top-1 {right[clean].float().mean():.4f}); its errors there, none forced by a lost pair: "
          f"{describe(error_kinds(truth[clean & ~right], predicted[clean & ~right]), n)}")


if __name__ == "__main__":
    main()
