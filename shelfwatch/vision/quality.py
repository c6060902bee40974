"""Per-photo quality flags: blur, exposure and tilt, so low-confidence results say so."""

from __future__ import annotations

import cv2
import numpy as np

BLUR_MIN = 25.0
DARK_MAX = 45.0
BRIGHT_MIN = 215.0
TILT_MAX_DEG = 8.0


def photo_quality(gray: np.ndarray, tilt_deg: float) -> dict[str, float | bool]:
    """Sharpness (Laplacian variance), brightness, tilt and a ``low_confidence`` flag."""
    sharpness = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    brightness = float(gray.mean())
    flags = {
        "blurred": sharpness < BLUR_MIN,
        "too_dark": brightness < DARK_MAX,
        "too_bright": brightness > BRIGHT_MIN,
        "tilted": abs(tilt_deg) > TILT_MAX_DEG,
    }
    return {
        "sharpness": round(sharpness, 1),
        "brightness": round(brightness, 1),
        "tilt_deg": round(tilt_deg, 2),
        **flags,
        "low_confidence": any(flags.values()),
    }
