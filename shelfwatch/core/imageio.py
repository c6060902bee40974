"""Reading photos as a person sees them (EXIF orientation applied), with clear errors.

Every accepted format becomes an 8-bit, 3-channel BGR array by its real range: 16-bit and
high-bit-depth grayscale are scaled by the bit depth they use (a 12-bit sensor's values
fill 0-4095), not clipped at 255; grayscale is repeated into three channels; CMYK and
palette images are converted to RGB; transparency is flattened onto white.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shelfwatch.core.errors import BadInputError

try:  # HEIC/HEIF (iPhone photos) through the maintained plugin, where it is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - an install without the plugin
    HEIF = False

# Pillow's own bomb guard fires at ~89 MP; shelf photos never need more than this.
MAX_PIXELS = 80_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"} | (
    {"HEIF", "HEIC"} if HEIF else set()
)
# Why a format a person may try is refused (named in the error).
REFUSED = {
    "GIF": "GIF keeps 256 colours, too few to tell products apart: send the camera's JPEG",
    "HEIF": "HEIC/HEIF needs the pillow-heif package (pip install pillow-heif)",
    "HEIC": "HEIC/HEIF needs the pillow-heif package (pip install pillow-heif)",
}
MIN_SIDE = 32


def load_image(path: str | Path) -> np.ndarray:
    """Load a photo file as a BGR uint8 array, upright per its EXIF orientation."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(str(path), "no such file")
    if path.is_dir():
        raise BadInputError(str(path), "is a directory, not an image")
    return decode_image(path.read_bytes(), str(path))


def decode_image(data: bytes, source: str = "photo") -> np.ndarray:
    """Decode a photo's bytes as a BGR uint8 array; ``source`` names it in errors."""
    if not data:
        raise BadInputError(source, "empty file")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) between 1x and 2x its pixel limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            if img.format not in SUPPORTED_FORMATS:
                why = REFUSED.get(img.format or "", f"unsupported image format {img.format}")
                raise BadInputError(source, why)
            if img.width * img.height > MAX_PIXELS:
                raise BadInputError(source, f"image too large ({img.width}x{img.height})")
            img = ImageOps.exif_transpose(img)
            img.load()
            rgb = _to_rgb8(img)
    except BadInputError:
        raise
    except UnidentifiedImageError:
        raise BadInputError(source, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(source, "image too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(source, f"unreadable image ({exc})") from None
    if rgb.shape[0] < MIN_SIDE or rgb.shape[1] < MIN_SIDE:
        raise BadInputError(source, f"image too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB, high bit depths scaled by their real range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img).astype(np.float64)
        unit = img.mode == "F" and values.size and values.min() >= 0 and values.max() <= 1
        gray = _scale_by_depth(values * 255 if unit else values)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    # 48-bit RGB PNGs are opened by Pillow as 8-bit RGB from each sample's high byte, which
    # is their real range scaled; L, 1, P, CMYK, YCbCr convert as Pillow defines.
    return np.asarray(img.convert("RGB"))


def _scale_by_depth(values: np.ndarray) -> np.ndarray:
    """High-bit-depth samples -> uint8 by the smallest common bit depth holding them all."""
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if low < 0:
        values = values - low
        top = max(float(values.max()), 1.0)
    else:
        top = next((2.0**b - 1 for b in (8, 10, 12, 14, 16) if high <= 2**b - 1), high)
    return np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
