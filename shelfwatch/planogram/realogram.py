"""The realogram: per shelf, the observed left-to-right sequence of facings and gaps."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from shelfwatch.core.scene import DETECTOR, Products, ShelfScene

# A box this many times its SKU's facing width holds that many facings side by side (the
# detector merged narrow neighbours of one SKU); two boxes of one SKU that together are no
# wider than ONE_PACK facings are one pack seen twice (a wide pack split).
MERGED = 1.75
ONE_PACK = 1.3
# A wide box is counted over the columns its mask shows product in (at least this share of
# its rows), not its whole width: a detector's box over several packs reaches past the
# outer ones onto the fixture back (varied seed 7403: a box 226 px wide on four packs 166
# px wide counted five). Half: 162 false findings on the tuning seeds (a prototype gave 161
# at a half, 163 / 165 at 0.15 / 0.3).
SHOWN = 0.5
# A box standing on another's columns (at least this share of its width over it, at most
# this share of its height beside it) is that facing again (``_stacked``).
STACKED = 0.5
# A box as wide as no whole number of its SKU's packs, give or take this factor, is not
# that SKU's: of two boxes in one column it is the duplicate (a bottle's top found apart
# from its body and named after a wide pack; varied tuning seed 9465: 18 -> 4 false
# findings, the other 13 tuning seeds unchanged).
MISFIT = 1.5
# A stretch between two boxes of one SKU this many of its facings wide hides its facings.
HIDDEN = 0.75
# At most this many of them: a wider stretch no box or gap explains is more likely an empty
# one the gap stage missed than touching packs (1-2 on varied seeds 501-502, never more).
MOST_HIDDEN = 2
# Two neighbouring boxes of one SKU whose centres lie this many of each one's width apart
# (at least, at most) are packs side by side: their centre distance is the SKU's pitch.
PITCH = (0.6, 1.4)
# Boxes narrower than this share of a SKU's facing, no further apart than it, are pieces
# of its packs: a detector reading the print of wide packs that touch (their words, their
# pictures) finds boxes on the parts, and those that pass for no catalog pack would split
# the run and count as unknown products (varied seed 7404: 37 -> 23 false findings; 0.4,
# 0.5 and 0.6 alike, see the README).
PIECE = 0.5


@dataclass(frozen=True)
class ObservedFacing:
    """One slot on a shelf as seen: a product (``sku`` may be None = unknown) or a gap.
    ``facing_px``: how wide one facing of that SKU is in the photo, where the catalog says;
    ``inferred``: a facing no box was drawn on, between two boxes of its SKU; ``product``:
    the row of ``scene.products`` it was seen as (None for gaps and inferred facings);
    ``shown``: for a box as wide as several facings, the columns from the first to the last
    its mask shows product in (``SHOWN``; the box's own without a mask), else None."""

    kind: str  # "product" | "gap"
    sku: str | None
    bbox: tuple[int, int, int, int]
    facings: int = 1
    facing_px: float | None = None
    inferred: bool = False
    product: int | None = None
    shown: tuple[int, int] | None = None


@dataclass(frozen=True)
class Run:
    """Consecutive facings of one SKU on a shelf (the realogram's unit)."""

    sku: str | None
    facings: int
    bbox: tuple[int, int, int, int]


def realogram(
    scene: ShelfScene, widths_cm: dict[str, float] | None = None
) -> dict[int, list[ObservedFacing]]:
    """Facings and gaps of every shelf, ordered left to right.

    ``widths_cm`` (the catalog's pack widths by SKU): the photo's scale is taken from the
    identified boxes themselves (median pixels per cm), and a box as wide as several packs
    of its SKU counts as that many facings (narrow neighbours the detector merged), and an
    unknown box among pieces of one SKU's packs is that SKU (``_named_pieces``). A box
    standing on another's columns is that facing (``_stacked``)."""
    rows: dict[int, list[ObservedFacing]] = {s.index: [] for s in scene.shelves}
    p = scene.products
    one = facing_px(scene, widths_cm or {})
    stacked = _stacked(p, one)
    for i in range(len(p)):
        shelf = int(p.shelf[i])
        if shelf in rows and not stacked[i]:
            box = tuple(int(v) for v in p.xyxy[i])
            px = one.get(p.sku[i]) if p.sku[i] is not None else None
            # Only a box wide enough to hold several facings is counted by its mask.
            wide = px is not None and box[2] - box[0] >= MERGED * px
            shown = _shown(p, i) if wide else None
            seen = ObservedFacing("product", p.sku[i], box, 1, px, product=i, shown=shown)  # type: ignore[arg-type]
            rows[shelf].append(seen)
    for g in scene.gaps:
        if g.shelf in rows:
            rows[g.shelf].append(ObservedFacing("gap", None, g.bbox, g.missing_facings or 1))
    for shelf in rows:
        rows[shelf].sort(key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
        rows[shelf] = _hidden_facings(_merged_facings(_named_pieces(rows[shelf])))
    return rows


def _shown(p: Products, i: int) -> tuple[int, int]:
    """The columns of product ``i`` from the first to the last its mask shows product in
    (at least ``SHOWN`` of the box's rows); its box's columns without a mask."""
    x1, x2 = int(p.xyxy[i, 0]), int(p.xyxy[i, 2])
    mask = p.masks[i] if p.masks is not None else None
    if mask is None or not mask.size:
        return x1, x2
    on = np.flatnonzero(mask.mean(axis=0) >= SHOWN)
    return (x1 + int(on[0]), x1 + int(on[-1]) + 1) if len(on) else (x1, x2)


def _stacked(p: Products, one: dict[str, float]) -> np.ndarray:
    """Per box, whether it is another box of its shelf's column again (at least ``STACKED``
    of its width over the other's columns, at most ``STACKED`` of its height beside it):
    one facing seen as two boxes, a pack stacked on another or a bottle's neck found apart
    from its body. Of the two, a box as wide as no whole number of its SKU's packs
    (``MISFIT``) is the duplicate where the other box is as wide as some; else the upper
    one, if it is the smaller (similar boxes one above the other may stand on two shelves
    the shelf finder took for one). A facing is a column of the shelf, however many units
    it holds."""
    x1, y1, x2, y2 = (p.xyxy[:, k, None].astype(float) for k in range(4))  # box i: row i
    cols = np.clip(np.minimum(x2, x2.T) - np.maximum(x1, x1.T), 0, None)  # [i, j] shared
    rows = np.clip(np.minimum(y2, y2.T) - np.maximum(y1, y1.T), 0, None)
    above = (
        (p.shelf[:, None] == p.shelf[None, :])
        & (y1 + y2 < (y1 + y2).T)  # i's centre above j's
        & (cols >= STACKED * (x2 - x1))
        & (rows <= STACKED * (y2 - y1))
    )
    out = np.zeros(len(p), dtype=bool)
    pairs = np.nonzero(above)
    if not len(pairs[0]):
        return out
    fits = np.array([_fits(float(p.widths[k]), one.get(p.sku[k] or "")) for k in range(len(p))])
    area = ((x2 - x1) * (y2 - y1))[:, 0]
    for i, j in zip(*pairs, strict=True):
        if fits[i] != fits[j]:
            out[j if fits[i] else i] = True
        elif area[i] < area[j]:
            out[i] = True
    return out


def _fits(width: float, pack_px: float | None) -> bool:
    """Whether a box this wide is some whole number of packs ``pack_px`` wide, give or
    take ``MISFIT`` (False for a box of no known SKU or pack width)."""
    if not pack_px or width <= 0:
        return False
    packs = max(1, round(width / pack_px))
    return 1 / MISFIT <= width / (packs * pack_px) <= MISFIT


def _named_pieces(row: list[ObservedFacing]) -> list[ObservedFacing]:
    """An unknown box between pieces of one SKU's packs is a piece of them too (``PIECE``):
    it takes that SKU, and the runs count the pieces by the packs they lie on. This is the
    realogram's reading; ``packs.whole_packs`` names the products themselves by it."""
    out = list(row)
    for i, f in enumerate(row):
        if f.kind == "product" and f.sku is None:
            left, right = _piece_of(row, i, -1), _piece_of(row, i, 1)
            if left is not None and right is not None and left.sku == right.sku:
                out[i] = replace(f, sku=left.sku, facing_px=left.facing_px)
    return out


def _piece_of(row: list[ObservedFacing], i: int, step: int) -> ObservedFacing | None:
    """The first identified box from ``row[i]`` in direction ``step`` (-1 left, +1 right)
    over unknown boxes only, if it and the boxes walked over are all pieces of its SKU's
    packs (each narrower than ``PIECE`` facings, neighbours at most that far apart)."""
    walked, j = [row[i]], i + step
    while 0 <= j < len(row) and row[j].kind == "product" and row[j].sku is None:
        walked.append(row[j])
        j += step
    if not 0 <= j < len(row) or row[j].kind != "product" or not row[j].facing_px:
        return None
    named = row[j]
    one = float(named.facing_px)  # type: ignore[arg-type]
    walked = sorted([*walked, named], key=lambda f: f.bbox[0])
    narrow = all(f.bbox[2] - f.bbox[0] < PIECE * one for f in walked)
    close = all(b.bbox[0] - a.bbox[2] < PIECE * one for a, b in itertools.pairwise(walked))
    return named if narrow and close else None


def _merged_facings(row: list[ObservedFacing]) -> list[ObservedFacing]:
    """A box as wide as several packs of its SKU holds that many facings. Its width is
    the columns it shows product in (``shown``), counted from the middle of its overlap
    with the boxes left of it: from where they end, overlapping boxes on one run of packs
    would not count the overlap twice, but a loose box over one pack that reaches onto the
    next would take a pack from the wide box beside it."""
    out: list[ObservedFacing] = []
    covered = -1  # right end of the products so far
    for f in row:
        if f.kind == "product" and f.facing_px:
            lo, hi = f.shown or (f.bbox[0], f.bbox[2])
            start = (lo + covered) / 2 if covered > lo else lo
            ratio = (hi - start) / f.facing_px
            if ratio >= MERGED:
                f = replace(f, facings=int(round(ratio)))
        if f.kind == "product":
            covered = max(covered, f.bbox[2])
        out.append(f)
    return out


def _hidden_facings(row: list[ObservedFacing]) -> list[ObservedFacing]:
    """Facings of one SKU the detector missed between two of its boxes: a stretch no box or
    gap covers, flanked by one SKU, holds as many of its facings as fit (identical packs
    touching one another are what the detector separates worst; an empty stretch would be
    a gap)."""
    out: list[ObservedFacing] = []
    for f in row:
        a = out[-1] if out else None
        if (
            a is not None
            and a.kind == f.kind == "product"
            and a.sku == f.sku
            and a.sku is not None
            and f.facing_px
        ):
            stretch = f.bbox[0] - a.bbox[2]
            n = int(round(stretch / f.facing_px)) if stretch >= HIDDEN * f.facing_px else 0
            n = min(n, MOST_HIDDEN)
            for k in range(n):
                x1 = a.bbox[2] + int(k * stretch / n)
                x2 = a.bbox[2] + int((k + 1) * stretch / n)
                y1, y2 = min(a.bbox[1], f.bbox[1]), max(a.bbox[3], f.bbox[3])
                box = (x1, y1, x2, y2)
                out.append(ObservedFacing("product", f.sku, box, 1, f.facing_px, inferred=True))
        out.append(f)
    return out


def px_per_cm(scene: ShelfScene, widths_cm: dict[str, float]) -> float | None:
    """The photo's scale: the median of box width over pack width of the identified boxes
    (None with fewer than three)."""
    p = scene.products
    known = [i for i in range(len(p)) if p.sku[i] in widths_cm and widths_cm[p.sku[i]] > 0]
    if len(known) < 3:
        return None
    return float(np.median([p.widths[i] / widths_cm[p.sku[i]] for i in known]))  # type: ignore[index]


def pitch_per_cm(scene: ShelfScene, widths_cm: dict[str, float]) -> float | None:
    """The photo's scale from where packs stand, not how wide their boxes are: the median
    of centre distance over pack width of neighbouring detector boxes of one SKU on a shelf
    (``PITCH``); None with fewer than three such pairs. The detector's box is a few pixels
    loose on a narrow pack and short of a wide one, so box widths put the scale 5 % high
    on the varied tuning seeds (median; over 5 % off on half the photos, 1 in 5 by the
    pitch) and a box over two narrow packs then read as one."""
    p = scene.products
    known = [
        i
        for i in range(len(p))
        if p.source[i] == DETECTOR and widths_cm.get(p.sku[i] or "", 0) > 0  # type: ignore[operator]
    ]
    centre = (p.xyxy[:, 0] + p.xyxy[:, 2]) / 2
    scales = []
    for shelf in sorted({int(p.shelf[i]) for i in known}):
        row = sorted((i for i in known if p.shelf[i] == shelf), key=lambda i: centre[i])
        for a, b in itertools.pairwise(row):
            apart = float(centre[b] - centre[a])
            side_by_side = all(
                PITCH[0] * p.widths[k] < apart < PITCH[1] * p.widths[k] for k in (a, b)
            )
            if p.sku[a] == p.sku[b] and side_by_side:
                scales.append(apart / widths_cm[p.sku[a]])  # type: ignore[index]
    return float(np.median(scales)) if len(scales) >= 3 else None


def facing_px(scene: ShelfScene, widths_cm: dict[str, float]) -> dict[str, float]:
    """Per SKU of the catalog, one facing's width in this photo's pixels (``pitch_per_cm``,
    else ``px_per_cm``); empty without identified boxes."""
    scale = pitch_per_cm(scene, widths_cm) or px_per_cm(scene, widths_cm)
    if scale is None:
        return {}
    return {sku: cm * scale for sku, cm in widths_cm.items() if cm > 0}


def runs(facings: list[ObservedFacing]) -> list[Run]:
    """Collapse a shelf's products into runs of one SKU; gaps split nothing (they are empty).
    Two neighbouring boxes of one SKU no wider together than one pack are one facing."""
    out: list[Run] = []
    pack: tuple[int, int] | None = None  # columns of the pack the last box belongs to
    for f in facings:
        if f.kind != "product":
            continue
        if out and out[-1].sku == f.sku and f.sku is not None:
            last = out[-1]
            box = (
                min(last.bbox[0], f.bbox[0]),
                min(last.bbox[1], f.bbox[1]),
                max(last.bbox[2], f.bbox[2]),
                max(last.bbox[3], f.bbox[3]),
            )
            # Measured from the pack's own left edge, not the previous piece's: three pieces
            # of two packs are two facings, not one.
            split = (
                pack is not None
                and f.facing_px is not None
                and f.facings == 1
                and max(pack[1], f.bbox[2]) - pack[0] <= ONE_PACK * f.facing_px
            )
            out[-1] = Run(last.sku, last.facings + (0 if split else f.facings), box)
        else:
            out.append(Run(f.sku, f.facings, f.bbox))
            split = False
        if split and pack is not None:  # the piece widens its pack
            pack = (pack[0], max(pack[1], f.bbox[2]))
        else:  # a pack of its own (none to add pieces to after a box of several)
            pack = (f.bbox[0], f.bbox[2]) if f.facings == 1 else None
    return out


def realogram_json(
    rows: dict[int, list[ObservedFacing]], products: Products
) -> list[dict[str, object]]:
    """The realogram as ``check --json`` gives it; ``source``: what put the facing's product
    there (``core.scene.SOURCES``), None for gaps and inferred facings."""
    return [
        {
            "shelf": shelf,
            "facings": [
                {
                    "kind": f.kind,
                    "sku": f.sku,
                    "bbox": list(f.bbox),
                    "facings": f.facings,
                    "inferred": f.inferred,
                    "source": None if f.product is None else products.source[f.product],
                }
                for f in facings
            ],
        }
        for shelf, facings in sorted(rows.items())
    ]


def median_facing_width(scene: ShelfScene, shelf: int) -> float | None:
    widths = scene.products.widths[scene.products.shelf == shelf]
    return float(np.median(widths)) if len(widths) else None
