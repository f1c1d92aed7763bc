"""Fetch the official GSN archive into the local cache (idempotent; never a half-unpacked data set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab28.data.download import download_file, safe_extract_zip
from lab28.data.fetch import default_data_root
from lab28.errors import Lab28Error, file_error
from lab28.io_utils import replace_folder
from lab28.workloads.gsn.loader import read_labels_csv

GSN_URL = "https://github.com/marcin119a/data/raw/refs/heads/main/data_gsn.zip"
GSN_ZIP = "data_gsn.zip"


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
        replace_folder(new_data, data_dir)
    except Lab28Error as exc:
        if not cached:
            zip_path.unlink(missing_ok=True)  # a fresh download that is junk: the next run fetches it again
            raise
        raise Lab28Error(f"{exc} (delete {zip_path} to download it again)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data_dir
