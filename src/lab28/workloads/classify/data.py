"""A data set of the MNIST family (lab28.data.specs; Fashion-MNIST by default) on disk -> train / validation /
(optional) test tensors.

The validation split is carved from the 60,000 training images, stratified by class and fixed by a seed, so
model selection and early stopping never see the test set. The t10k test set is read only when its two files
are present and is used for the final evaluation only; when absent, the reason travels with the data so
every result can say "no test set" instead of quietly reporting validation numbers as test numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab28.config_io import check_seed
from lab28.data.fetch import idx_folder
from lab28.data.idx import find_fashion_files, load_idx_pair
from lab28.data.specs import IDX_DATASETS, IdxSpec, idx_spec
from lab28.errors import Lab28Error

DEFAULT_DATASET = "fashion-mnist"
# Fashion-MNIST's names (the default data set); any other one's: idx_spec(name).class_names.
CLASS_NAMES = idx_spec(DEFAULT_DATASET).class_names
NUM_CLASSES = 10  # outputs of every classify model; a data set must have exactly this many classes


@dataclass
class FashionDataConfig:
    dataset: str = DEFAULT_DATASET  # which IDX data set: a name in lab28.data.specs.IDX_DATASETS
    path: str = ""  # folder with its IDX files (raw or .gz); empty = its cache folder ($LAB28_DATA or ~/.cache/lab28)
    val_size: int = 5000  # validation images carved from train, stratified by class
    split_seed: int = 0  # fixes which images validate (independent of the training seed)
    train_size: int = 0  # train on at most this many images (stratified subset; 0 = all the rest)
    test_size: int = 0  # evaluate on at most the first N test images (0 = all 10,000)
    evaluate_test: bool = True  # evaluate the best checkpoint on t10k when the files are there

    def spec(self) -> IdxSpec:
        """The data set's spec: files, class names, normalisation."""
        return idx_spec(self.dataset)

    def validate(self) -> None:
        if self.dataset not in IDX_DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(IDX_DATASETS)}")
        if len(self.spec().class_names) != NUM_CLASSES:
            raise ValueError(f"dataset {self.dataset!r} has {len(self.spec().class_names)} classes; the classify "
                             f"models have {NUM_CLASSES} outputs")
        for name in ("val_size", "train_size", "test_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_seed("split_seed", self.split_seed)
        if self.val_size < NUM_CLASSES:
            raise ValueError(f"val_size must be >= {NUM_CLASSES} (one image per class), got {self.val_size}")


@dataclass
class Split:
    """uint8 images N x 1 x 28 x 28 and int64 labels N, as the trainer wants them (CPU tensors)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=NUM_CLASSES).tolist()


@dataclass
class FashionSplits:
    train: Split
    val: Split
    test: Split | None
    test_note: str  # what the test set is, or why there is none
    source: str
    val_indices: np.ndarray = field(repr=False)  # rows of the training files that validate

    def describe(self) -> dict:
        """What data.json records: enough to check two runs used the same split."""
        return {
            "source": self.source, "train_size": len(self.train),
            "val_size": len(self.val),
            "test_size": len(self.test) if self.test is not None else None, "test_note": self.test_note,
            "train_class_counts": self.train.class_counts(), "val_class_counts": self.val.class_counts(),
            "val_indices_md5": hashlib.md5(self.val_indices.astype(np.int64).tobytes()).hexdigest(),
        }


def default_data_dir(dataset: str = DEFAULT_DATASET) -> Path:
    """Where `lab28 data fetch <dataset>` puts a data set, and where runs look without --data."""
    return idx_folder(idx_spec(dataset))


def stratified_split(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, chosen) sorted row indices; `chosen` has `size` rows with each class's share of `labels`.

    Quotas are rounded by largest remainder so they sum to `size` exactly; within a class the rows are drawn
    with a seeded generator, so the same labels and seed always give the same split.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < size < n:
        raise Lab28Error(f"cannot take {size} of {n} images: need 0 < size < {n}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / n
    take = np.floor(quota).astype(np.int64)
    remainder = quota - take
    order = np.argsort(-remainder, kind="stable")  # ties go to the lower class id: deterministic
    take[order[: size - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    chosen.sort()
    mask = np.ones(n, dtype=bool)
    mask[chosen] = False
    return np.flatnonzero(mask), chosen


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), torch.from_numpy(labels).long())


def load_fashion(config: FashionDataConfig) -> FashionSplits:
    """Read the IDX files named by `config` and split them. Bad files raise Lab28Error naming the file."""
    config.validate()
    spec = config.spec()
    folder = Path(config.path).expanduser() if config.path else default_data_dir(spec.name)
    if not folder.is_dir():
        raise Lab28Error(f"{folder}: no such folder (get the data with `lab28 data fetch {spec.name}`)")
    train_files = find_fashion_files(folder, "train")
    if train_files is None:
        raise Lab28Error(f"{folder}: no {spec.title} training files (train-images-idx3-ubyte and "
                         "train-labels-idx1-ubyte, raw or .gz)")
    images, labels = load_idx_pair(*train_files)
    if config.val_size >= len(labels):
        raise Lab28Error(f"{train_files[1]}: val_size {config.val_size} leaves no training images "
                         f"(the file has {len(labels)})")
    rest, val_idx = stratified_split(labels, config.val_size, config.split_seed)
    if config.train_size and config.train_size < len(rest):
        # Subsample the remainder the same stratified way, so a small smoke run still sees every class.
        _, keep = stratified_split(labels[rest], config.train_size, config.split_seed + 1)
        rest = rest[keep]
    test, note = None, ""
    test_files = find_fashion_files(folder, "t10k")
    if not config.evaluate_test:
        note = "test evaluation turned off (data.evaluate_test = false)"
    elif test_files is None:
        note = (f"no test set: t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz) not found in "
                f"{folder}; all results are on the validation split")
    else:
        t_images, t_labels = load_idx_pair(*test_files)
        total = len(t_labels)
        if config.test_size:
            t_images, t_labels = t_images[: config.test_size], t_labels[: config.test_size]
        test = _to_split(t_images, t_labels)
        note = f"t10k: {len(test)} of {total} images from {test_files[0].name}"
    return FashionSplits(train=_to_split(images[rest], labels[rest]), val=_to_split(images[val_idx], labels[val_idx]),
                         test=test, test_note=note, source=str(folder), val_indices=val_idx)
