"""Fetch IDX data sets (the MNIST family, lab28.data.specs) into a local cache.

The fetcher is idempotent (a complete, valid copy on disk means no network at all) and never leaves a
half-downloaded or half-unpacked data set where the loaders would pick it up.
"""

from __future__ import annotations

from pathlib import Path

from lab28.data.download import download_file
from lab28.data.specs import IdxSpec
from lab28.io_utils import user_cache_dir


def default_data_root() -> Path:
    """Where data sets live unless told otherwise: $LAB28_DATA, else ~/.cache/lab28."""
    return user_cache_dir()


def idx_folder(spec: IdxSpec, root: Path | str | None = None) -> Path:
    """The folder a data set is fetched into and loaded from by default: `root/<spec.name>/`."""
    return Path(root if root is not None else default_data_root()).expanduser() / spec.name


def fetch_idx_dataset(spec: IdxSpec, root: Path | str | None = None, mirrors: list[str] | None = None,
                      timeout: float = 60.0) -> Path:
    """Download the spec's four .gz files into `root/<spec.name>/` (md5-checked); return the folder.

    `mirrors` replaces the spec's base URLs (tests point it at a local server). A file already there with the
    right md5 is kept without touching the network; one that matches on no mirror is refused.
    """
    folder = idx_folder(spec, root)
    bases = list(mirrors if mirrors is not None else spec.mirrors)
    for name, md5 in spec.files.items():
        urls = [base.rstrip("/") + "/" + name for base in bases]
        download_file(urls, folder / name, md5=md5, timeout=timeout)
    return folder
