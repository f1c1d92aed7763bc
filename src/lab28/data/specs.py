"""The IDX data sets lab28 knows (the MNIST family): where to get them, how to check them, what their labels mean.

A new data set of this kind (four gzipped IDX files named as MNIST's, ten classes of 28x28 grey images) is one
`IdxSpec` entry in `IDX_DATASETS`; the fetcher, the classification workload, its figures and reports take
everything else from the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab28.errors import Lab28Error

# The file names every member of the family uses; the loader (lab28.data.idx.find_fashion_files) looks for these,
# raw or gzipped.
IDX_FILE_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                  "t10k-labels-idx1-ubyte.gz")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class IdxSpec:
    name: str  # registry key, cache folder name and `--dataset` value
    title: str  # how reports and figures name it
    files: dict[str, str]  # file name -> md5 of the .gz as served (the four IDX_FILE_NAMES)
    mirrors: tuple[str, ...]  # base URLs, tried in order; a file's URL is base + file name
    class_names: tuple[str, ...]  # label k is class_names[k]
    mean: float  # training-set pixel mean in [0, 1], for normalisation
    std: float  # training-set pixel standard deviation in [0, 1]

    def __post_init__(self) -> None:
        # A wrong entry should fail at import, not halfway through a download or a run.
        if sorted(self.files) != sorted(IDX_FILE_NAMES):
            raise ValueError(f"{self.name}: files must be exactly {IDX_FILE_NAMES}, got {tuple(self.files)}")
        bad = [md5 for md5 in self.files.values() if not _MD5.match(md5)]
        if bad:
            raise ValueError(f"{self.name}: md5 must be 32 lower-case hex digits, got {bad}")
        if not self.mirrors or not all(m.startswith(("http://", "https://")) and m.endswith("/") for m in self.mirrors):
            raise ValueError(f"{self.name}: mirrors must be http(s) base URLs ending in '/', got {self.mirrors}")
        if len(set(self.class_names)) != len(self.class_names) or len(self.class_names) < 2:
            raise ValueError(f"{self.name}: class_names must be at least two distinct names")
        if not (0.0 < self.mean < 1.0 and 0.0 < self.std < 1.0):
            raise ValueError(f"{self.name}: mean and std must lie in (0, 1), got {self.mean}, {self.std}")


def _registry(*specs: IdxSpec) -> dict[str, IdxSpec]:
    out: dict[str, IdxSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"IDX data set {spec.name!r} is registered twice")
        out[spec.name] = spec
    return out


IDX_DATASETS: dict[str, IdxSpec] = _registry(
    IdxSpec(
        name="fashion-mnist", title="Fashion-MNIST",
        files={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
               "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
               "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"),
        mean=0.2860, std=0.3530,
    ),
    IdxSpec(
        name="mnist", title="MNIST",
        files={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
               "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
               "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        # yann.lecun.com often refuses plain downloads now, so PyTorch's S3 copy goes first.
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        class_names=("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"),
        mean=0.1307, std=0.3081,
    ),
    IdxSpec(
        name="kmnist", title="Kuzushiji-MNIST",
        files={"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
               "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
               "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
               "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"},
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/", "https://storage.googleapis.com/kuzushiji-mnist/"),
        class_names=("o (お)", "ki (き)", "su (す)", "tsu (つ)", "na (な)", "ha (は)", "ma (ま)", "ya (や)", "re (れ)",
                     "wo (を)"),
        mean=0.1918, std=0.3483,
    ),
)


def idx_spec(name: str) -> IdxSpec:
    """The registered spec called `name`, or a one-line Lab28Error listing the valid names."""
    try:
        return IDX_DATASETS[name]
    except (KeyError, TypeError):
        raise Lab28Error(f"unknown data set {name!r}; choose one of: {', '.join(IDX_DATASETS)}") from None


__all__ = ["IDX_DATASETS", "IDX_FILE_NAMES", "IdxSpec", "idx_spec"]
