"""How much top-1 can any GSN model reach, given that two identical shapes on one spot XOR to nothing?

    python experiments/cancellation_ceiling.py [--images 10000000] [--seed 0]

Two shapes of one kind on the same reference pixel cover the same pixels, so XOR composition erases both: the
image shows eight shapes (or fewer) and nothing in it says which kind lost the pair. A pair of a kind is not
always ambiguous: e.g. 2 squares + 8 circles seen as 0 + 8 can only be that, as 0 squares is no valid split. The
Bayes-optimal answer for an image whose visible counts are `e` is the true configuration most often behind `e`;
this script samples scenes as the generator does (lab28.workloads.gsn.synth.sample_scenes, without drawing
them) and counts the images that even that answer gets wrong. Their share bounds every model's top-1 from above.
Other ambiguities (near-coincident shapes, patterns that decode two ways) are not counted, so the true ceiling is
lower still. Findings: docs/gsn.md, "How far the free track can go".
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from lab28.workloads.gsn.labels import NUM_SHAPES, TOTAL_SHAPES
from lab28.workloads.gsn.synth import IMAGE_SIZE, sample_scenes

_CHUNK = 250_000


def visible_counts(kinds: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Counts (n, 6) of the shapes left after XOR: a (kind, reference pixel) present an odd number of times."""
    n = kinds.shape[0]
    keys = np.sort(kinds * IMAGE_SIZE**2 + anchors[..., 0] * IMAGE_SIZE + anchors[..., 1], axis=1)
    visible = np.zeros((n, NUM_SHAPES), dtype=np.int64)
    for slot in range(TOTAL_SHAPES):
        same = keys == keys[:, slot:slot + 1]
        first_of_its_key = ~same[:, :slot].any(axis=1)
        odd = first_of_its_key & (same.sum(axis=1) % 2 == 1)
        np.add.at(visible, (np.flatnonzero(odd), keys[odd, slot] // IMAGE_SIZE**2), 1)
    return visible


def lost_pair_answers(rng: np.random.Generator, images: int) -> tuple[dict[tuple, tuple], int, int]:
    """Sample `images` scenes as the generator places them. Returns the Bayes-optimal answer to each visible count
    vector seen among the images that lost a pair (the true counts most often behind it), how many images lost a
    pair, and how many of those that answer gets wrong."""
    behind = Counter()  # (visible counts, true counts) -> images, for images that lost a pair
    erased = 0
    for start in range(0, images, _CHUNK):
        counts, kinds, anchors = sample_scenes(rng, min(_CHUNK, images - start))
        visible = visible_counts(kinds, anchors)
        lost = (visible != counts).any(axis=1)
        erased += int(lost.sum())
        behind.update(zip(map(tuple, visible[lost]), map(tuple, counts[lost])))
    best: dict[tuple, tuple[tuple, int]] = {}
    for (seen, truth), n in behind.items():
        if n > best.get(seen, (None, 0))[1]:
            best[seen] = (truth, n)
    wrong = erased - sum(n for _, n in best.values())
    return {seen: truth for seen, (truth, _) in best.items()}, erased, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _, erased, wrong = lost_pair_answers(np.random.default_rng(args.seed), args.images)
    print(f"{args.images:,} images: {erased / args.images:.4f} lost at least one pair to XOR; the Bayes-optimal "
          f"answer gets {wrong / args.images:.4f} wrong, so top-1 <= {1 - wrong / args.images:.4f}")


if __name__ == "__main__":
    main()
