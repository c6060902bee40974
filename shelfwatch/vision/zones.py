"""The shelves stage's pieces: shelf zones bay by bay, each shelf level once per bay, and
where on them a box, a void or a gap stands (the level it is on, the shelf above it)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from shelfwatch.core.scene import Products, Shelf
from shelfwatch.vision.evaluation import interval_iou
from shelfwatch.vision.shelves import (
    LEARNED_LINE,
    ShelfEdge,
    find_bays,
    merge_rows,
    product_rows,
)

# A row of at least this many products below a bay's lowest edge stands on a shelf of its own.
OPEN_LEVEL_ROW = 3


@dataclass(frozen=True)
class Zone:
    """A piece of one shelf level: the band from ``top`` down to ``bottom`` (its shelf edge's
    top) over columns ``x1``..``x2``, in one slice of the photo whose shelves sit at one
    height. Pieces of one physical shelf in neighbouring slices share ``shelf``.

    The columns are the slice's (from its leftmost edge's start to its rightmost edge's
    end), not the edge strip's own: a strip seen on part of the bay only (hidden by
    overhanging packs, faint at the photo's side) is still one shelf across the bay. With
    the strip's columns its products beyond the strip went to the next shelf up or down and
    its gaps there were not looked for."""

    top: int
    bottom: int
    edge: ShelfEdge
    bay: int
    shelf: int
    x1: int
    x2: int


def edge_lines(scores: np.ndarray | None) -> np.ndarray | None:
    """The shelf-edge net's map as lines (0/1), where its weights are there."""
    return None if scores is None else (scores >= LEARNED_LINE).astype(np.uint8)


def shelf_zones(
    gray: np.ndarray,
    boxes: np.ndarray | None = None,
    lines: np.ndarray | None = None,
    upright_map: np.ndarray | None = None,
) -> list[Zone]:
    """Shelf zones bay by bay, each shelf level once per bay.

    Slices whose shelves sit at their own heights are found first (``find_bays``), on the
    shelf-edge net's ``lines`` where its weights are there; without them each slice's
    edge zones are corrected by the rows of detected products (``boxes``).
    Neighbouring slices whose levels continue one another (an aisle shot's converging
    shelves, a bay cut where a level is hidden) are one bay: a level's pieces across them
    are one shelf, so a shelf is counted once per bay."""
    h = gray.shape[0]
    slices: list[list[tuple[int, int, ShelfEdge]]] = []
    at_upright: list[bool] = []
    spans: list[tuple[int, int]] = []  # each slice's columns
    # Product rows correct classical edges only: on learned lines their corrections made more
    # wrong shelves than they fixed (first 20 photos of real-shelves: precision 0.85 without
    # them, 0.77 with).
    by_rows = boxes is not None and lines is None
    centres = (boxes[:, 0] + boxes[:, 2]) / 2 if by_rows else None
    for bay in find_bays(gray, lines=lines, upright_map=upright_map):
        bay_zones = _edge_zones(bay.edges, h)
        if by_rows:
            inside = (centres >= bay.x1) & (centres < bay.x2)
            bay_zones = merge_rows(bay_zones, product_rows(boxes[inside]), boxes[inside])
        columns = _columns(bay_zones)
        if boxes is not None:
            bay_zones += _open_level(bay_zones, boxes, h, columns)
        slices.append(bay_zones)
        at_upright.append(bay.after_upright)
        spans.append(columns)
    zones: list[Zone] = []
    bay = 0
    chain: list[int] = []  # shelf number of each zone of the previous slice
    for i, pieces in enumerate(slices):
        links = _continuing(slices[i - 1], pieces) if i and not at_upright[i] else {}
        joined = i > 0 and len(links) >= max(1, 0.75 * max(len(slices[i - 1]), len(pieces)))
        bay += 0 if joined else 1
        next_shelf = max((z.shelf for z in zones), default=0) + 1
        current = []
        for k, (a, b, e) in enumerate(pieces):
            if joined and k in links:
                number = chain[links[k]]
            else:
                number, next_shelf = next_shelf, next_shelf + 1
            current.append(number)
            zones.append(Zone(a, b, e, bay, number, *spans[i]))
        chain = current
    return _number_top_down(zones)


def _continuing(
    left: list[tuple[int, int, ShelfEdge]], right: list[tuple[int, int, ShelfEdge]]
) -> dict[int, int]:
    """Zones of ``right`` that continue a zone of ``left`` (bands overlapping with IoU >=
    0.5, matched one to one): {right index: left index}."""
    from scipy.optimize import linear_sum_assignment

    if not left or not right:
        return {}
    iou = np.array(
        [[interval_iou((a, e.y_bottom), (c, f.y_bottom)) for c, _, f in left] for a, _, e in right]
    )
    rows, cols = linear_sum_assignment(-iou)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= 0.5}


def _number_top_down(zones: list[Zone]) -> list[Zone]:
    """Shelves numbered from 1 bay by bay, left to right, and top down within a bay."""
    level = {}
    for z in zones:
        level.setdefault((z.bay, z.shelf), []).append(z.edge.y_top)
    order = sorted(level, key=lambda k: (k[0], float(np.mean(level[k]))))
    number = {k: i for i, k in enumerate(order, 1)}
    return [replace(z, shelf=number[(z.bay, z.shelf)]) for z in zones]


def shelves_of(zones: list[Zone]) -> list[Shelf]:
    """One Shelf per shelf level of a bay: its pieces' band and columns; its edge from the
    leftmost piece's edge to the rightmost one's (sloped where the shelf is seen at an
    angle)."""
    shelves = []
    for number in sorted({z.shelf for z in zones}):
        pieces = sorted((z for z in zones if z.shelf == number), key=lambda z: z.x1)
        first, last = pieces[0].edge, pieces[-1].edge
        shelves.append(
            Shelf(
                number,
                min(z.top for z in pieces),
                max(z.edge.y_bottom for z in pieces) + 1,
                pieces[0].x1,
                pieces[-1].x2,
                int(np.median([z.edge.y_top for z in pieces])),
                (first.x1, first.y_top, last.x2, last.y_top) if len(pieces) > 1 else None,
                pieces[0].bay,
            )
        )
    return shelves


def _edge_zones(edges: list[ShelfEdge], h: int) -> list[tuple[int, int, ShelfEdge]]:
    """(top, bottom, edge) per shelf: from the edge above (or the photo's top) to this edge."""
    zones = []
    prev_bottom = 0
    for edge in edges:
        zones.append((prev_bottom, edge.y_top, edge))
        prev_bottom = edge.y_bottom + 1
    # A zone much lower than its neighbours lies above the fixture's top, not on a shelf.
    # (Against the typical zone: one tall zone, such as pegboard hooks, is no yardstick.)
    median_level = float(np.median([b - a for a, b, _ in zones])) if zones else 0.0
    zones = [z for z in zones if z[1] - z[0] >= max(0.04 * h, 0.4 * median_level)]
    if len(zones) >= 3:
        # Nothing bounds the top shelf from above: it reaches as high as the others are tall,
        # not into the ceiling or the next fixture behind.
        typical = float(np.median([b - a for a, b, _ in zones[1:]]))
        top, bottom, edge = zones[0]
        zones[0] = (max(top, int(bottom - 1.1 * typical)), bottom, edge)
    return zones


def _columns(zones: list[tuple[int, int, ShelfEdge]]) -> tuple[int, int]:
    """A slice's columns: from its leftmost edge's start to its rightmost edge's end ((0, 0)
    for a slice without levels, which makes no zone)."""
    return min((e.x1 for _, _, e in zones), default=0), max((e.x2 for _, _, e in zones), default=0)


def shelf_ends(zones: list[Zone], seen: bool = False) -> dict[int, tuple[int, int]]:
    """Per shelf, its columns over all its pieces: the slices' (``Zone.x1``..``x2``), or
    with ``seen`` those its edge strip was seen over."""
    ends: dict[int, tuple[int, int]] = {}
    for z in zones:
        a, b = (z.edge.x1, z.edge.x2) if seen else (z.x1, z.x2)
        lo, hi = ends.get(z.shelf, (a, b))
        ends[z.shelf] = (min(lo, a), max(hi, b))
    return ends


def _open_level(
    zones: list[tuple[int, int, ShelfEdge]], boxes: np.ndarray, h: int, columns: tuple[int, int]
) -> list[tuple[int, int, ShelfEdge]]:
    """The level below a bay's lowest edge, where a row of products stands on a shelf the
    photo does not show (cut off by the frame, or an edge too faint to find): at least
    OPEN_LEVEL_ROW detected products in the slice's ``columns`` whose tops lie below it. Its edge
    is the row's base, out of view. Without it those products joined the shelf above and its
    gaps were lost (real-gaps' photos are crops: their bottom row often has no edge in view).
    The one product-row correction kept on the shelf-edge net's lines (``merge_rows``, the
    general one, made more wrong shelves there than it fixed: see the README)."""
    if not zones:
        return []
    edge = zones[-1][2]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    row = boxes[(cx >= columns[0]) & (cx <= columns[1]) & (boxes[:, 1] >= edge.y_bottom)]
    if len(row) < OPEN_LEVEL_ROW:
        return []
    base = min(h - 1, int(np.percentile(row[:, 3], 90)))
    unseen = ShelfEdge(base, base, edge.x1, edge.x2, strength=0.0, in_view=False)
    return [(edge.y_bottom + 1, base, unseen)]


def to_product_tops(shelf: Shelf, products: Products) -> Shelf:
    """The shelf's band starts at its products' tops (the tallest tenth aside), not at the
    shelf above: the space over the products is not the shelf's."""
    tops = products.xyxy[products.shelf == shelf.index, 1] if len(products) else []
    if len(tops) < 3:
        return shelf
    top = int(np.percentile(tops, 10))
    return replace(shelf, y1=min(max(shelf.y1, top), shelf.y2 - 1))


def shelf_of(boxes: np.ndarray, zones: list[Zone]) -> np.ndarray:
    """Per box, the shelf (1-based) whose zone, from the products' tops down to its edge
    strip, holds its centre, else the nearest one; 0 without shelves."""
    shelf = np.zeros(len(boxes), int)
    if not zones or not len(boxes):
        return shelf
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    top = np.array([z.top for z in zones], float)
    bottom = np.array([z.edge.y_bottom for z in zones], float)
    x1 = np.array([z.x1 for z in zones], float)
    x2 = np.array([z.x2 for z in zones], float)
    dist = np.maximum(np.maximum(top[None] - cy[:, None], cy[:, None] - bottom[None]), 0)
    dist += np.maximum(np.maximum(x1[None] - cx[:, None], cx[:, None] - x2[None]), 0)
    return np.array([z.shelf for z in zones])[np.argmin(dist, axis=1)]


def shelf_above(shelf: int, x: float, zones: list[Zone]) -> tuple[Zone, int | None] | None:
    """At column ``x``: the zone of shelf ``shelf`` and the bottom row of the shelf edge
    above it (``None`` for the top shelf); ``None`` off the shelf's zones."""
    own = [z for z in zones if z.shelf == shelf and z.x1 <= x <= z.x2]
    if not own:
        return None
    above = [
        z.edge.y_bottom for z in zones if z.x1 <= x <= z.x2 and z.edge.y_bottom < own[0].edge.y_top
    ]
    return own[0], max(above, default=None)


def level_rows(shelf: int, x: float, zones: list[Zone]) -> tuple[int, int] | None:
    """At column ``x``: the rows of shelf ``shelf``'s level, from the edge of the shelf above
    (or its products' tops) down to its own edge's top; ``None`` off the shelf's zones."""
    found = shelf_above(shelf, x, zones)
    if found is None:
        return None
    zone, above = found
    return (zone.top if above is None else above), zone.edge.y_top
