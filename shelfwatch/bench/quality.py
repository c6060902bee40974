"""How the quality gate's thresholds were chosen: its measures on real shelf photos and on
degraded copies of each (blurred, darkened, washed out, blank), and the verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.imageio import load_image
from shelfwatch.vision.quality import gate, measure

SETS = ("real-shelves", "real-shelves-more", "real-gaps", "real-products")
PER_SET = 60  # about this many photos of each set, evenly spread by name


def degraded(image: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """The photo as a bad capture would show it; blur in pixels per 1000 px of the photo."""
    s = max(image.shape[:2]) / 1000
    yield "original", image
    yield "blur2", cv2.GaussianBlur(image, (0, 0), 2 * s)
    yield "blur4", cv2.GaussianBlur(image, (0, 0), 4 * s)
    yield "dark", (image * 0.15).astype(np.uint8)
    yield "washed_out", np.clip(image.astype(np.float32) * 0.2 + 220, 0, 255).astype(np.uint8)
    noise = rng.normal(0, 3, image.shape)
    yield "blank", np.clip(np.full(image.shape, 128.0) + noise, 0, 255).astype(np.uint8)


def run(shared: Path, say: Callable[[str], None] = lambda _m: None) -> list[dict[str, object]]:
    """Per variant: each measure's min / 5th percentile / median / max, and how many photos
    the gate sends back (shelves and products counted as present: measures only)."""
    rng = np.random.default_rng(0)
    values: dict[str, dict[str, list[float]]] = {}
    retakes: dict[str, int] = {}
    for name in SETS:
        files = sorted((shared / name).rglob("*.jpg"))
        for path in files[:: max(1, len(files) // PER_SET)]:
            say(str(path))
            for variant, image in degraded(load_image(path), rng):
                q = measure(image)
                for key in ("sharpness", "brightness", "contrast"):
                    values.setdefault(variant, {}).setdefault(key, []).append(q[key])
                verdict = gate(q, shelves=1, products=10)["verdict"]
                retakes[variant] = retakes.get(variant, 0) + (verdict == "retake")
    rows: list[dict[str, object]] = []
    for variant, measures in values.items():
        row: dict[str, object] = {"variant": variant, "photos": len(measures["sharpness"])}
        for key, v in measures.items():
            a = np.asarray(v)
            row[key] = [round(float(x), 1) for x in np.percentile(a, [0, 5, 50, 100])]
        row["retake"] = retakes[variant]
        rows.append(row)
    return rows
