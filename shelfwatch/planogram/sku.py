"""SKU identification without model weights: signatures from catalog reference images.

A signature is a normalised hue-saturation histogram of the pack's pixels, its aspect ratio
and its layout (colour strip by strip from top to bottom). Colour says whether a facing is a
catalog product at all (``None``, unknown, when no reference's colours are close enough);
among the like-coloured SKUs shape and layout choose. The score is kept either way.
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


# The pack's layout: its colour (Lab) strip by strip from top to bottom, so that packs of one
# colour with their bands, windows and print at other heights are told apart (a red can and
# a red box of like shape; varied renders of seed 7402 hold five red SKUs).
STRIPS = 16
ROWS_PER_STRIP = 4  # the box is read at this many pixel rows per strip (and <= 24 columns)
# Layouts of the packshot's lower part too: a detector's box often leaves out the top of a
# tall pack (a bottle's neck), while every pack stands on the shelf.
LOWER_PARTS = (1.0, 0.85, 0.7)
# Boxes sit a little higher or lower on their pack than the packshot's outline: layouts are
# compared shifted by up to this many strips.
SHIFT = 2
LAYOUT_WEIGHT = 2.0  # a layout far off costs this much similarity ...
LAYOUT_SCALE = 20.0  # ... one this far off (mean Lab distance per strip) 63 % of it
# With the photo's planogram known, a SKU it plans on the box's own shelf wins among
# like-coloured ones by this much similarity, one it lists elsewhere on the fixture by
# PLANNED_PRIOR: a near tie (a planned cyan pouch boxed short against an unlisted cyan
# bottle, within 0.02) goes to the planned pack; a clear match of an unlisted SKU is still
# that SKU. The fixture's SKUs keep a smaller prior so that a shelf numbered one off does not
# name its packs after the wrong shelf's. Shelf prior 0.3 of 0.1 / 0.2 / 0.3 / 0.4 / 0.6 on
# varied seeds 502, 7401-7403 and 9402 (0.4 and more took true `extra` findings); the
# fixture's 0.1 chosen before on 7401-7403 and 9402 (0.2 took true findings on 7402).
SHELF_PRIOR = 0.3
PLANNED_PRIOR = 0.1


@dataclass(frozen=True)
class Signature:
    """What a catalog pack looks like: colours, shape, layout and the packshot itself
    (cropped to the pack, with its mask), which ``packshots.located_packs`` looks for."""

    sku: str
    hist: np.ndarray
    aspect: float | None
    layouts: np.ndarray  # (len(LOWER_PARTS), STRIPS, 3) Lab
    packshot: np.ndarray | None = None  # grey levels, cropped to the pack
    packshot_mask: np.ndarray | None = None  # the pack's pixels in ``packshot``


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
    ys, xs = np.nonzero(mask)
    pack, inside = (
        image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
        mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1],
    )
    h = len(pack)
    lower = [int(round(h * (1 - part))) for part in LOWER_PARTS]
    layouts = np.stack([layout(pack[top:], inside[top:]) for top in lower])
    grey = cv2.cvtColor(pack, cv2.COLOR_BGR2GRAY)
    return Signature(sku, colour_histogram(image, mask), aspect, layouts, grey, inside)


def layout(bgr: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """A pack's median colour (Lab: L 0-100, a and b around 0) in each of ``STRIPS``
    horizontal strips from top to bottom, of the ``mask``'s pixels where a strip has some.
    Strips run across the whole box, so a box over several packs side by side or over part
    of one pack's width has its pack's layout."""
    # A few pixels per strip tell its colour: read a small copy (a pack is 50-300 px tall).
    size = (min(bgr.shape[1], 24), STRIPS * ROWS_PER_STRIP)
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    if mask is not None:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    strips = lab.reshape(STRIPS, -1, 3)  # ROWS_PER_STRIP rows each
    inside = np.ones(strips.shape[:2], bool)
    if mask is not None:
        inside = mask.reshape(STRIPS, -1).astype(bool)
        inside |= ~(inside.sum(axis=1) > 3)[:, None]  # too few of the mask's: the whole strip
    # The (lower) median of each strip's pixels inside: those outside sort last.
    ordered = np.sort(np.where(inside[..., None], strips, np.inf), axis=1)
    return ordered[np.arange(STRIPS), (inside.sum(axis=1) - 1) // 2]


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
    planned: dict[int, set[str]] | None = None,
) -> ShelfScene:
    """Label each product with the best-matching SKU by colour, shape and layout (``None``
    where its colours match none up to ``MIN_SIMILARITY``). ``planned``: the SKUs the
    photo's planogram puts on each shelf (by shelf index); among like-coloured ones those on
    the box's shelf win by up to ``SHELF_PRIOR``, those elsewhere on the fixture by up to
    ``PLANNED_PRIOR``."""
    products = scene.products
    if not signatures or len(products) == 0:
        return scene
    candidates = [s for s in signatures if allowed is None or s.sku in allowed] or signatures
    refs = np.stack([s.hist for s in candidates])
    packs = np.stack([s.layouts for s in candidates])
    listed = set().union(*planned.values()) if planned else set()
    on_fixture = np.array([s.sku in listed for s in candidates], float)
    on_shelf = {
        shelf: np.array([s.sku in skus for s in candidates], float)
        for shelf, skus in (planned or {}).items()
    }
    elsewhere = np.zeros(len(candidates))  # a shelf the planogram puts nothing on
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
        colour = np.minimum(refs, hist[None, :]).sum(axis=1)
        apart = _layout_off(packs, layout(crop, mask))
        sims = colour - LAYOUT_WEIGHT * (1 - np.exp(-apart / LAYOUT_SCALE))
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
        # Colour says whether a facing is a catalog product at all, shape and layout only which
        # of the like-coloured ones it is: a box on part of a pack, or a pack squeezed into a
        # narrower slot, has the wrong shape but still its pack's colours.
        like = colour >= MIN_SIMILARITY
        mine = on_shelf.get(int(products.shelf[i]), elsewhere)
        prior = SHELF_PRIOR * mine + PLANNED_PRIOR * on_fixture * (1 - mine)
        preferred = sims + prior  # the score stays the plain similarity
        best = (
            int(np.argmax(np.where(like, preferred, -np.inf)))
            if like.any()
            else int(np.argmax(sims))
        )
        scores[i] = max(0.0, float(sims[best]))
        skus.append(candidates[best].sku if like[best] else None)
    return scene.with_products(products.labelled(skus, scores))


def _layout_off(packs: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per candidate, how far a box's layout lies from its packshot's (the closest of its
    lower parts) in mean Lab distance per strip, the two shifted against each other by up
    to ``SHIFT`` strips (the strips both cover compared). ``packs``: (candidates,
    len(LOWER_PARTS), STRIPS, 3)."""
    best = np.full(len(packs), np.inf, np.float32)
    for shift in range(-SHIFT, SHIFT + 1):
        box = seen[max(0, shift) : STRIPS + min(0, shift)]
        pack = packs[:, :, max(0, -shift) : STRIPS - max(0, shift)]
        off = np.linalg.norm(pack - box, axis=3).mean(axis=2).min(axis=1)
        best = np.minimum(best, off)
    return best
