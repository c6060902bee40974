"""Packs located by their packshot.

The detector's boxes on a run of identical packs that touch do not always fall on the packs:
on wide packs whose print runs across the seam (a word, a band) it boxes the print, two
packs and a half at a time, or a third of one; on packs whose edges it cannot see it boxes
too few. The catalog's packshot says where each pack is: matched along the run (normalised
cross-correlation of the pack's grey levels inside its outline, at the photo's scale), it
peaks once per pack. Where the peaks explain every box of the run (each box lies on a
located pack) and count another number of packs than the boxes, the run's boxes are
replaced by the located packs. Unknown boxes among and beside a run (pieces of the packs'
print whose colours passed for no catalog pack) are tried with it first: where the located
packs explain them too, they are pieces of those packs (even at as many boxes as packs).
Where the packshot does not match (a real photo's pack against a catalog image that looks
otherwise), nothing peaks and nothing changes.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from shelfwatch.core.scene import PACKSHOT, Products, Shelf, ShelfScene
from shelfwatch.planogram.formats import CatalogItem
from shelfwatch.planogram.realogram import px_per_cm
from shelfwatch.planogram.sku import Signature

# A located pack's least correlation with its packshot (a pack at the right scale scores
# 0.8 and more on renders, one 5 % off it 0.6-0.7, a neighbour's half 0.3-0.5).
MATCH = 0.6
# Packs of one SKU side by side do not overlap: peaks closer than this share of a pack's
# width are one pack.
APART = 0.9
# The photo's scale from the boxes (``px_per_cm``) runs 4-10 % over the packs' (detector
# boxes are a little wider than their packs), so the packshot is tried at these shares of it.
SCALES = (0.85, 0.9, 0.95, 1.0)
# The packshot is matched this many pixels wide (the run's strip read at that scale): the
# packs' pattern, not their fine print, tells them apart, and it keeps the step to ~30 ms a
# photo with a catalog.
READ_PX = 24
# A located pack's centre lies at most ``INSIDE`` of a pack beyond the run's boxes (packs the
# run's boxes stand on, not the neighbours'), so the strip looked at reaches ``REACH`` pack
# widths beyond them: a pack centred that far out ends half a pack further (0.6 missed the
# last pack of runs whose boxes stop short of it).
INSIDE = 0.3
REACH = INSIDE + 0.5
# The located packs cover at least this share of the columns the run's boxes cover.
COVER = 0.9
# A located pack may cover this share of a box outside the run (neighbours' boxes overlap a
# little); more, and the run is left as the detector saw it.
OTHERS = 0.25


def located_packs(
    image: np.ndarray,
    scene: ShelfScene,
    catalog: dict[str, CatalogItem],
    signatures: list[Signature],
) -> ShelfScene:
    """``scene`` with each run of one SKU's boxes on a shelf replaced by its packs as located
    by the SKU's packshot, where they explain every box and count otherwise; unchanged
    without pack widths, packshots or three identified boxes (no scale)."""
    widths = {sku: float(c.width_cm) for sku, c in catalog.items() if c.width_cm}
    scale = px_per_cm(scene, widths)
    shots = {s.sku: s for s in signatures if s.packshot is not None and s.sku in widths}
    if scale is None or not shots:
        return scene
    p = scene.products
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    dropped = np.zeros(len(p), bool)
    located: list[Products] = []
    for band in scene.shelves:
        for sku, tries in _runs(p, band.index):
            sig = shots.get(sku)
            if sig is None:
                continue
            for run in tries:
                if dropped[run].any():  # an unknown box a run before took in
                    continue
                packs = _locate(grey, p.xyxy[run], band, sig, widths[sku] * scale)
                # Boxes as many as packs are left as they are, unless some are unknown: the
                # packs name those after the run's SKU.
                known = [i for i in run if p.sku[i] is not None]
                if len(packs) == len(known) == len(run) or not _explained(p.xyxy[run], packs):
                    continue
                others = p.shelf == band.index
                others[run] = False
                if _over_others(packs, p.xyxy[others]):
                    continue
                dropped[run] = True
                located.append(_products(p, known, packs, sig, band.index))
                if len(run) > len(known):
                    break  # the run with its unknown boxes: its parts are replaced with it
    if not located:
        return scene
    products = Products.concat([p[~dropped], *located])
    order = np.lexsort((products.centers[:, 0], products.shelf))
    return replace(scene, products=products[order])


def _runs(p: Products, shelf: int) -> list[tuple[str, list[list[int]]]]:
    """The shelf's runs of one identified SKU, left to right, each as the box lists to try:
    first the run with the unknown boxes among and beside it (where there are any), then its
    parts between unknown boxes, as the detector saw them."""
    order = [int(i) for i in np.argsort(p.centers[:, 0], kind="stable") if p.shelf[i] == shelf]
    runs: list[tuple[str, list[int], list[int]]] = []  # SKU, its boxes in order, unknowns beside
    unknown: list[int] = []  # unknown boxes since the last identified one
    for i in order:
        sku = p.sku[i]
        if sku is None:
            unknown.append(i)
        elif runs and runs[-1][0] == sku:
            runs[-1][1].extend([*unknown, i])
            unknown = []
        else:
            if runs:
                runs[-1][2].extend(unknown)  # unknown boxes between two SKUs: both may take them
            runs.append((sku, [i], list(unknown)))
            unknown = []
    if runs:
        runs[-1][2].extend(unknown)
    out = []
    for sku, boxes, beside in runs:
        parts: list[list[int]] = [[]]
        for i in boxes:
            if p.sku[i] is None:
                parts.append([])
            else:
                parts[-1].append(i)
        whole = sorted(boxes + beside, key=lambda i: p.centers[i, 0])
        tries = ([whole] if len(whole) > sum(map(len, parts)) else []) + [r for r in parts if r]
        out.append((sku, tries))
    return out


def _locate(
    grey: np.ndarray, boxes: np.ndarray, band: Shelf, sig: Signature, one: float
) -> np.ndarray:
    """The packs the packshot finds on the run's strip (x1, y1, x2, y2 in the photo), left
    to right: the scale whose best match is highest, then its peaks at least ``APART`` of a
    pack apart scoring ``MATCH`` or more, centred at most ``INSIDE`` of a pack beyond the
    run's boxes."""
    shot, mask = sig.packshot, sig.packshot_mask
    assert shot is not None
    # Only the pack's own pixels count (a bottle's shoulders show the shelf behind).
    outline = None if mask is None or mask.all() else mask.astype(np.uint8)
    tall = one * shot.shape[0] / shot.shape[1]
    h, w = grey.shape
    x0 = int(max(0, boxes[:, 0].min() - REACH * one))
    x1 = int(min(w, boxes[:, 2].max() + REACH * one))
    y0 = int(max(0, min(band.y1, boxes[:, 1].min()) - 0.3 * tall))
    y1 = int(min(h, max(band.y2, boxes[:, 3].max()) + 0.1 * tall))
    f = min(1.0, READ_PX / one)
    strip = cv2.resize(grey[y0:y1, x0:x1], None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    best: tuple[np.ndarray, int, int] | None = None
    for s in SCALES:
        tw = int(round(one * s * f))
        th = int(round(tw * shot.shape[0] / shot.shape[1]))
        if tw < 4 or th < 4 or th > strip.shape[0] or tw > strip.shape[1]:
            continue
        template = cv2.resize(shot, (tw, th), interpolation=cv2.INTER_AREA)
        if outline is None:
            fit = cv2.matchTemplate(strip, template, cv2.TM_CCOEFF_NORMED)
        else:
            m = cv2.resize(outline, (tw, th), interpolation=cv2.INTER_NEAREST)
            fit = cv2.matchTemplate(strip, template, cv2.TM_CCOEFF_NORMED, mask=m)
            fit = np.nan_to_num(fit, nan=-1.0, posinf=-1.0, neginf=-1.0)  # flat patches
        if best is None or fit.max() > best[0].max():
            best = (fit, tw, th)
    if best is None:
        return np.zeros((0, 4))
    fit, tw, th = best
    column, top = fit.max(axis=0), fit.argmax(axis=0)
    lo, hi = boxes[:, 0].min() - INSIDE * one, boxes[:, 2].max() + INSIDE * one
    packs = []
    while len(column) and column.max() >= MATCH:
        k = int(column.argmax())
        box = np.array([k, top[k], k + tw, top[k] + th]) / f + [x0, y0, x0, y0]
        if lo <= (box[0] + box[2]) / 2 <= hi:
            packs.append(box)
        column[max(0, k - int(APART * tw)) : k + int(APART * tw) + 1] = -1
    return np.array(sorted(packs, key=lambda b: b[0])).reshape(-1, 4)


def _explained(boxes: np.ndarray, packs: np.ndarray) -> bool:
    """Whether the located packs explain the run's boxes: each box lies on a pack (half its
    width and half its height on it: a pack stacked on another is a box of its own the
    packs must explain too), and the packs cover ``COVER`` of the columns the boxes cover (a
    pack the packshot missed among them leaves a hole)."""
    if not len(packs):
        return False
    for b in boxes.astype(float):
        cols, rows = _shared(b, packs, 0), _shared(b, packs, 1)
        if not ((cols >= 0.5 * (b[2] - b[0])) & (rows >= 0.5 * (b[3] - b[1]))).any():
            return False
    x0 = int(min(boxes[:, 0].min(), packs[:, 0].min()))
    width = int(max(boxes[:, 2].max(), packs[:, 2].max())) - x0 + 1
    seen, found = np.zeros(width, bool), np.zeros(width, bool)
    for covered, spans in ((seen, boxes), (found, packs)):
        for a, b in spans[:, [0, 2]].astype(int) - x0:
            covered[a:b] = True
    return bool((seen & found).sum() >= COVER * seen.sum())


def _over_others(packs: np.ndarray, others: np.ndarray) -> bool:
    """Whether a located pack covers more than ``OTHERS`` of another box of the shelf (the
    packshot matched across a neighbour, or a box the run's boxes stand beside)."""
    return any((_shared(b, packs, 0) > OTHERS * (b[2] - b[0])).any() for b in others.astype(float))


def _shared(box: np.ndarray, packs: np.ndarray, axis: int) -> np.ndarray:
    """Per pack, how many columns (``axis`` 0) or rows (1) it shares with ``box``
    (negative where they lie apart)."""
    return np.minimum(box[axis + 2], packs[:, axis + 2]) - np.maximum(box[axis], packs[:, axis])


def _products(
    p: Products, run: list[int], packs: np.ndarray, sig: Signature, shelf: int
) -> Products:
    """The located packs as products of the run's SKU (``PACKSHOT`` their source): the run's
    best detector score and SKU match, the packshot's outline as mask (where the scene has
    masks)."""
    boxes = np.round(packs).astype(np.int32)
    n = len(boxes)
    masks = None
    if p.masks is not None:
        outline = sig.packshot_mask
        masks = [
            cv2.resize(
                (outline if outline is not None else np.ones((2, 2), bool)).astype(np.uint8),
                (int(b[2] - b[0]), int(b[3] - b[1])),
                interpolation=cv2.INTER_NEAREST,
            ).astype(bool)
            for b in boxes
        ]
    return Products(
        xyxy=boxes,
        scores=np.full(n, p.scores[run].max()),
        masks=masks,
        shelf=np.full(n, shelf),
        sku=[sig.sku] * n,
        sku_score=np.full(n, p.sku_score[run].max()),
        source=[PACKSHOT] * n,
    )
