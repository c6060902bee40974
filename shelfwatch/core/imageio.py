"""Reading photos as a person sees them (EXIF orientation applied), with clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shelfwatch.core.errors import BadInputError

# Pillow's own bomb guard fires at ~89 MP; shelf photos never need more than this.
MAX_PIXELS = 80_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"}


def load_image(path: str | Path) -> np.ndarray:
    """Load a photo as a BGR uint8 array, upright per its EXIF orientation."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(str(path), "no such file")
    if path.is_dir():
        raise BadInputError(str(path), "is a directory, not an image")
    if path.stat().st_size == 0:
        raise BadInputError(str(path), "empty file")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) between 1x and 2x its pixel limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if img.format not in SUPPORTED_FORMATS:
                raise BadInputError(str(path), f"unsupported image format {img.format}")
            if img.width * img.height > MAX_PIXELS:
                raise BadInputError(str(path), f"image too large ({img.width}x{img.height})")
            img = ImageOps.exif_transpose(img)
            rgb = img.convert("RGB")
            rgb.load()
    except BadInputError:
        raise
    except UnidentifiedImageError:
        raise BadInputError(str(path), "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(str(path), "image too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(str(path), f"unreadable image ({exc})") from None
    arr = np.asarray(rgb)
    if arr.shape[0] < 32 or arr.shape[1] < 32:
        raise BadInputError(str(path), f"image too small ({arr.shape[1]}x{arr.shape[0]})")
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
