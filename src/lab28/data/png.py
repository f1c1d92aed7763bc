"""Safe reading of one 28 x 28 PNG into a uint8 array: the one place that opens user images.

Refuses, in one line naming the file: anything but a regular file (opening a FIFO or device would block),
images whose header declares another size (checked before any pixel is decoded, so a small file declaring
billions of pixels is never inflated), and files PIL cannot read.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lab28.errors import file_error

IMAGE_SIZE = 28
CHANNELS = ("R", "L")  # R: the red channel of colour images (GSN); L: luminance (the MNIST family)


def require_regular_file(path: Path, missing: str = "no such file") -> None:
    """Refuse anything but a regular file (or a link to one): opening a FIFO or device would block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise file_error(path, missing) from None
    except OSError as exc:
        raise file_error(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise file_error(path, "not a regular file")


def read_png(path: str | os.PathLike, channel: str = "L", missing: str = "no such file") -> np.ndarray:
    """One 28 x 28 uint8 channel of a PNG.

    channel "R": the red channel of RGB/RGBA images (averaging with alpha would turn a background grey);
    "L": ITU-R 601 luminance of colour images. Greyscale images are read as they are either way (16-bit ones keep
    their top 8 bits, palette and 1-bit ones are converted to grey).
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    path = Path(path)
    require_regular_file(path, missing=missing)
    try:
        with warnings.catch_warnings():
            # The size check below refuses such images from their header; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            # Checked before load(): a small file may declare billions of pixels (a decompression bomb).
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise file_error(path, f"image is {img.size[0]}x{img.size[1]}, expected 28x28")
            img.load()
            if img.mode in ("RGB", "RGBA") and channel == "R":
                return np.asarray(img.getchannel("R"), dtype=np.uint8)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit greyscale: keep the top 8 bits so {0, 65535} maps to {0, 255}.
                return (np.asarray(img, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            return np.asarray(img.convert("L"), dtype=np.uint8)  # L, LA, P, 1 (and RGB(A) for channel L)
    except FileNotFoundError:
        raise file_error(path, missing) from None
    except Image.DecompressionBombError as exc:
        raise file_error(path, f"image is far larger than 28x28 ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise file_error(path, f"not a readable PNG ({exc.__class__.__name__}: {exc})") from None
