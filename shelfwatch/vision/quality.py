"""Photo quality: measures, flags, and the gate's verdict (``usable`` or ``retake``).

The thresholds were chosen on real shelf photos (see the README, "Photo quality gate"):
each lies well outside what every real photo in ../shared measured, and inside what
degraded copies of those photos (blurred, darkened, washed out, blank) measured.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

BLUR_MIN = 25.0  # Laplacian variance of the ~1.3 MP working frame
DARK_MAX = 45.0  # mean gray level
BRIGHT_MIN = 215.0
TILT_MAX_DEG = 8.0
# Retake thresholds, chosen on 216 real photos of ../shared (all four sets) and degraded
# copies of each (`shelfwatch bench quality`, README "Photo quality gate"): real photos
# measured sharpness >= 21.7, brightness 72-149, contrast >= 37.6; blurred (sigma 4 per
# 1000 px) sharpness <= 15.1 (median 2.3), darkened (x0.15) brightness <= 21.8 and
# contrast >= 5.6, washed out brightness >= 232.7, blank contrast <= 2.0.
BLANK_CONTRAST = 4.0  # gray standard deviation: a lens cap, a wall, a blank frame
RETAKE_BLUR = 10.0
RETAKE_DARK = 35.0
RETAKE_BRIGHT = 225.0
USABLE, RETAKE = "usable", "retake"


def photo_quality(gray: np.ndarray, tilt_deg: float) -> dict[str, Any]:
    """Sharpness (Laplacian variance), brightness, contrast, tilt and their flags."""
    # OpenCV's mean and standard deviation: one pass, no temporaries (numpy's var makes two).
    _, laplacian_std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))
    mean, std = cv2.meanStdDev(gray)
    sharpness = float(laplacian_std[0, 0]) ** 2
    brightness, contrast = float(mean[0, 0]), float(std[0, 0])
    flags = {
        "blurred": sharpness < BLUR_MIN,
        "too_dark": brightness < DARK_MAX,
        "too_bright": brightness > BRIGHT_MIN,
        "tilted": abs(tilt_deg) > TILT_MAX_DEG,
        "blank": contrast < BLANK_CONTRAST,
    }
    return {
        "sharpness": round(sharpness, 1),
        "brightness": round(brightness, 1),
        "contrast": round(contrast, 1),
        "tilt_deg": round(tilt_deg, 2),
        **flags,
        "low_confidence": any(flags.values()),
    }


def gate(quality: dict[str, Any], shelves: int, products: int) -> dict[str, Any]:
    """``quality`` with ``verdict`` and ``reasons`` added: a retake when the photo cannot be
    trusted for an audit (blank, too dark or bright, blurred, sideways, or no shelf in it)."""
    reasons = []
    if quality.get("blank"):
        reasons.append("blank")
    else:
        if quality.get("brightness", 128.0) < RETAKE_DARK:
            reasons.append("too_dark")
        if quality.get("brightness", 128.0) > RETAKE_BRIGHT:
            reasons.append("too_bright")
        if quality.get("sharpness", BLUR_MIN) < RETAKE_BLUR:
            reasons.append("blurred")
        if quality.get("rotated_90"):
            reasons.append("rotated_90")
        if shelves == 0 and products < 3:
            reasons.append("not_a_shelf")
    out = dict(quality)
    out["verdict"] = RETAKE if reasons else USABLE
    out["reasons"] = reasons
    if reasons:
        out["low_confidence"] = True
    return out


def measure(image: np.ndarray) -> dict[str, Any]:
    """The measures of a photo that no backend measured (model backends): same frame size
    as the default backend's working frame, no tilt estimate."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, float(np.sqrt(1.3e6 / (gray.shape[0] * gray.shape[1]))))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return photo_quality(gray, 0.0)
