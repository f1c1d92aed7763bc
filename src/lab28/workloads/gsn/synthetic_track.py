"""The synthetic track: every epoch trains on freshly generated GSN images, validation stays on the real rows.

Trained on 39,000 synthetic images only, the lab's fixed backbone beats every run on the 8,000 real ones (see
docs/gsn.md): the generator (lab28.workloads.gsn.synth) is the lever. So instead of one fixed set, each epoch here
gets `synth_per_epoch` images never seen before, a `real_fraction` of them drawn from the real training rows.

Each epoch's images come from a seed derived from (train.seed, data.synth_seed, epoch): a run repeats itself under
its seeds, and a resumed run regenerates exactly the epochs it missed. Nothing here ever reads the validation rows;
the engine validates, stops early and keeps best.pt on them alone. A fixed synthetic validation set (its own seed)
is evaluated beside them each epoch, so that metrics.csv shows the sim-to-real gap (`val_synth_accuracy` against
`val_accuracy`).

Generating 8,000 images takes about 0.25 s on one CPU core, far below an epoch of training, so it runs in line at
the start of each epoch rather than in a background thread.
"""

from __future__ import annotations

import numpy as np
import torch

from lab28.workloads.gsn.loader import GSNData
from lab28.workloads.gsn.synth import generate

# Distinct streams for the two uses of the seeds, so an epoch's images can never repeat the fixed synthetic set.
_EPOCH_STREAM, _VAL_STREAM = 1, 2
SYNTH_VAL_NAME = "synth"  # metrics.csv columns val_synth_<metric>


def derived_seed(*parts: int) -> int:
    """One 64-bit seed from several non-negative integers (numpy's SeedSequence mixes them)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0])


def generated(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n synthetic images as the trainer takes them: uint8 N x 1 x 28 x 28 and int64 counts N x 6."""
    images, counts = generate(n, seed=seed)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(counts).long()


class SyntheticEpochs:
    """`epoch -> (images, counts)`: the training tensors of one synthetic-track epoch (lab28.workloads.base.RunData).

    `real`: the real training rows (never the validation ones) that `real_fraction` of each epoch is drawn from,
    at random without repetition while the epoch needs no more than there are.
    """

    def __init__(self, real: GSNData, per_epoch: int, real_fraction: float, train_seed: int, synth_seed: int):
        self.real, self.per_epoch = real, per_epoch
        self.real_per_epoch = round(real_fraction * per_epoch)
        self.train_seed, self.synth_seed = train_seed, synth_seed

    def __call__(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        seed = derived_seed(self.train_seed, self.synth_seed, epoch, _EPOCH_STREAM)
        fresh = self.per_epoch - self.real_per_epoch
        images, counts = generated(fresh, seed) if fresh else (self.real.images[:0], self.real.counts[:0])
        if not self.real_per_epoch:
            return images, counts
        rng = np.random.default_rng(seed)
        n_real = len(self.real)
        rows = torch.from_numpy(rng.choice(n_real, self.real_per_epoch, replace=self.real_per_epoch > n_real))
        return torch.cat([images, self.real.images[rows]]), torch.cat([counts, self.real.counts[rows]])


def synthetic_validation(size: int, synth_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed synthetic set evaluated each epoch beside the real validation rows (same for every run of a
    synth_seed, whatever train.seed, so runs that differ in their training seed compare on it)."""
    return generated(size, derived_seed(synth_seed, _VAL_STREAM))


def track_words(data_config) -> str:
    """How reports and the start line name the track; "" for the protocol track."""
    if data_config.track != "synthetic":
        return ""
    return (f"synthetic ({data_config.synth_per_epoch} fresh synthetic images per epoch, real fraction "
            f"{data_config.real_fraction:g}); validation on real images")
