"""SKU identification without model weights: colour signatures from catalog reference images.

A signature is a normalised hue-saturation histogram of the pack's pixels plus its aspect
ratio; a facing takes the SKU whose signature is closest, or ``None`` (unknown) when no
reference is close enough. The score is kept either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.errors import BadInputError
from shelfwatch.core.imageio import load_image
from shelfwatch.core.scene import ShelfScene

H_BINS, S_BINS, V_BINS = 18, 4, 3
MIN_SIMILARITY = 0.35
# How many packs of one SKU a single detected box may hold side by side.
SIDE_BY_SIDE = (1, 2, 3)


@dataclass(frozen=True)
class Signature:
    sku: str
    hist: np.ndarray
    aspect: float | None


def colour_histogram(bgr: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """L1-normalised hue-saturation histogram of chromatic pixels plus grey-level bins.

    Brightness is left out of chromatic bins so shelf lighting does not move a pack
    between bins; grey pixels (white text, black print) vote by lightness instead.
    """
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    if mask is not None:
        hsv = hsv[mask.reshape(-1).astype(bool)]
    chroma = (hsv[:, 1] >= 60) & (hsv[:, 2] >= 40)
    h_bin = hsv[chroma, 0] * H_BINS // 180
    s_bin = (hsv[chroma, 1] - 60) * S_BINS // 196
    hist = np.bincount(h_bin * S_BINS + s_bin, minlength=H_BINS * S_BINS).astype(np.float32)
    grey = np.bincount(hsv[~chroma, 2] * V_BINS // 256, minlength=V_BINS).astype(np.float32)
    out = np.concatenate([hist, grey])
    total = out.sum()
    return out / total if total > 0 else out


def reference_signature(
    sku: str, image: np.ndarray, height_cm: float | None = None, width_cm: float | None = None
) -> Signature:
    """Signature of a packshot: the product is whatever differs from the border colour."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    bg = np.median(border, axis=0)
    mask = np.linalg.norm(image.astype(np.float32) - bg, axis=2) > 25
    if mask.sum() < 0.05 * mask.size:
        mask = np.ones(mask.shape, bool)
    aspect = (width_cm / height_cm) if width_cm and height_cm else None
    return Signature(sku, colour_histogram(image, mask), aspect)


def load_signatures(catalog_dir: Path, items: list) -> list[Signature]:
    """Signatures of every catalog item with a readable reference image."""
    sigs = []
    for item in items:
        if not item.reference_image:
            continue
        path = catalog_dir / item.reference_image
        try:
            image = load_image(path)
        except BadInputError:
            continue
        sigs.append(reference_signature(item.sku, image, item.height_cm, item.width_cm))
    return sigs


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection in [0, 1]."""
    return float(np.minimum(a, b).sum())


def identify_skus(
    image: np.ndarray,
    scene: ShelfScene,
    signatures: list[Signature],
    allowed: set[str] | None = None,
) -> ShelfScene:
    """Label each product with the best-matching SKU (``None`` below ``MIN_SIMILARITY``)."""
    products = scene.products
    if not signatures or len(products) == 0:
        return scene
    candidates = [s for s in signatures if allowed is None or s.sku in allowed] or signatures
    refs = np.stack([s.hist for s in candidates])
    skus: list[str | None] = []
    scores = np.zeros(len(products), dtype=np.float32)
    for i in range(len(products)):
        x1, y1, x2, y2 = (int(v) for v in products.xyxy[i])
        crop = image[y1:y2, x1:x2]
        if crop.size == 0:
            skus.append(None)
            continue
        mask = products.masks[i] if products.masks is not None else None
        if mask is not None and mask.shape != crop.shape[:2]:
            mask = None
        hist = colour_histogram(crop, mask)
        sims = np.minimum(refs, hist[None, :]).sum(axis=1)
        aspect = (x2 - x1) / max(1, y2 - y1)
        for k, sig in enumerate(candidates):
            if sig.aspect:
                # Facings of the same colour but another pack size are told apart by shape;
                # a box may hold a few packs side by side (neighbours the detector merged).
                # (One pack is preferred: a same-coloured SKU twice as wide is one pack.)
                off = min(
                    abs(np.log(aspect / (n * sig.aspect))) + 0.02 * (n - 1) for n in SIDE_BY_SIDE
                )
                sims[k] -= 0.5 * min(1.0, off)
        best = int(np.argmax(sims))
        scores[i] = max(0.0, float(sims[best]))
        skus.append(candidates[best].sku if sims[best] >= MIN_SIMILARITY else None)
    return scene.with_products(products.labelled(skus, scores))
