"""Fetch the two data sets into a local cache: the GSN shapes archive and Fashion-MNIST.

Both fetchers are idempotent (a complete, valid copy on disk means no network at all) and never leave a
half-downloaded or half-unpacked data set where the loaders would pick it up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab28.data.download import download_file, replace_dir, safe_extract_zip
from lab28.errors import Lab28Error, file_error
from lab28.gsn.loader import read_labels_csv
from lab28.io_utils import user_cache_dir

GSN_URL = "https://github.com/marcin119a/data/raw/refs/heads/main/data_gsn.zip"
GSN_ZIP = "data_gsn.zip"

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


def _check_gsn_folder(data_dir: Path) -> None:
    """Raise Lab28Error unless `data_dir` holds a valid labels.csv and every image it names."""
    labels = data_dir / "labels.csv"
    names, _counts = read_labels_csv(labels)  # header, row format and count rules
    for name in names:
        if not (data_dir / name).is_file():
            raise file_error(data_dir / name, "image named in labels.csv is missing")


def fetch_gsn(root: Path | None = None, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download and unpack the GSN archive into `root/gsn/`; return the `root/gsn/data` folder.

    No checksum is published for the archive, so it is validated structurally instead: `data/labels.csv`
    with the expected header and rows, and every image it names present.
    """
    gsn_dir = Path(root if root is not None else default_data_root()).expanduser() / "gsn"
    data_dir = gsn_dir / "data"
    if (data_dir / "labels.csv").is_file():
        try:
            _check_gsn_folder(data_dir)
            return data_dir
        except Lab28Error:
            pass  # damaged or incomplete copy: rebuild it from the archive below

    zip_path = gsn_dir / GSN_ZIP
    cached = zip_path.is_file()  # a zip from an earlier run, or one placed here by hand
    download_file([url or GSN_URL], zip_path, timeout=timeout)
    # Unpack beside the final folder and validate there, so a bad archive never replaces a data/ folder.
    staging = gsn_dir / ".unpacked"
    try:
        safe_extract_zip(zip_path, staging)
        new_data = staging / "data"
        if not (new_data / "labels.csv").is_file():
            raise file_error(zip_path, "archive has no data/labels.csv")
        try:
            _check_gsn_folder(new_data)
        except Lab28Error as exc:
            # Name the member inside the archive rather than the staging folder that is about to vanish.
            raise file_error(zip_path, str(exc).replace(str(staging) + os.sep, "")) from None
        replace_dir(new_data, data_dir)
    except Lab28Error as exc:
        if not cached:
            zip_path.unlink(missing_ok=True)  # a fresh download that is junk: the next run fetches it again
            raise
        raise Lab28Error(f"{exc} (delete {zip_path} to download it again)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data_dir


def fetch_fashion_mnist(root: Path | None = None, mirrors: list[str] | None = None, timeout: float = 60.0) -> Path:
    """Download the four Fashion-MNIST .gz files into `root/fashion-mnist/` (md5-checked); return the folder."""
    folder = Path(root if root is not None else default_data_root()).expanduser() / "fashion-mnist"
    # Module globals are read at call time so tests (and users) can point them elsewhere.
    bases = list(mirrors if mirrors is not None else FASHION_MIRRORS)
    for name, md5 in FASHION_FILES.items():
        urls = [base.rstrip("/") + "/" + name for base in bases]
        download_file(urls, folder / name, md5=md5, timeout=timeout)
    return folder
