"""Fetch IDX data sets (the MNIST family) into a local cache.

The fetcher is idempotent (a complete, valid copy on disk means no network at all) and never leaves a
half-downloaded or half-unpacked data set where the loaders would pick it up.
"""

from __future__ import annotations

from pathlib import Path

from lab28.data.download import download_file
from lab28.io_utils import user_cache_dir

FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
]


def default_data_root() -> Path:
    """Where data sets live unless told otherwise: $LAB28_DATA, else ~/.cache/lab28."""
    return user_cache_dir()


def fetch_fashion_mnist(root: Path | None = None, mirrors: list[str] | None = None, timeout: float = 60.0) -> Path:
    """Download the four Fashion-MNIST .gz files into `root/fashion-mnist/` (md5-checked); return the folder."""
    folder = Path(root if root is not None else default_data_root()).expanduser() / "fashion-mnist"
    # Module globals are read at call time so tests (and users) can point them elsewhere.
    bases = list(mirrors if mirrors is not None else FASHION_MIRRORS)
    for name, md5 in FASHION_FILES.items():
        urls = [base.rstrip("/") + "/" + name for base in bases]
        download_file(urls, folder / name, md5=md5, timeout=timeout)
    return folder
