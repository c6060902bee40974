"""Shelf geometry shared by every backend: which shelf a product stands on, where gaps are."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf


def assign_shelves(products: Products, shelves: list[Shelf]) -> Products:
    """Set each product's shelf: the band holding the bottom-centre of its box (0 if none);
    of bands side by side (bays whose shelves sit at other heights), the one whose columns
    hold the box's centre, else the nearest.

    A band slopes with its shelf edge: on a shelf seen at a slight angle (a stitched walk
    is levelled only to within a few tenths of a degree, about 10 px across a long bay) a
    product near one end stands below or above the band's level at its centre."""
    if not shelves or len(products) == 0:
        return products
    xyxy = products.xyxy.astype(np.float64)
    bottoms = xyxy[:, 3] - 0.1 * (xyxy[:, 3] - xyxy[:, 1])
    centres = (xyxy[:, 0] + xyxy[:, 2]) / 2
    out = np.zeros(len(products), dtype=np.int32)
    nearest = np.full(len(products), np.inf)  # how far outside the chosen band's columns
    for s in shelves:
        level = bottoms - edge_drop(s, centres)
        inside = (level >= s.y1) & (level <= s.y2)
        off = (
            np.maximum(np.maximum(s.x1 - centres, centres - s.x2), 0)
            if s.x2 > s.x1
            else np.zeros(len(products))
        )
        better = inside & (off < nearest)
        out[better], nearest[better] = s.index, off[better]
    return products.on_shelves(out)


def edge_drop(shelf: Shelf, x: np.ndarray) -> np.ndarray:
    """How far below its height at the band's centre (``edge_y``) the shelf edge runs at
    columns ``x``; zero for a level or unknown edge."""
    if shelf.edge is None or shelf.edge_y is None or shelf.edge[2] == shelf.edge[0]:
        return np.zeros(len(x))
    x1, y1, x2, y2 = shelf.edge
    return y1 + (y2 - y1) * (x - x1) / (x2 - x1) - shelf.edge_y


def gaps_between(products: Products, shelves: list[Shelf], min_ratio: float = 0.55) -> list[Gap]:
    """Stretches of a shelf wider than ``min_ratio`` of its typical facing with no product."""
    gaps: list[Gap] = []
    for s in shelves:
        on = products.xyxy[products.shelf == s.index]
        x1, x2 = (s.x1, s.x2) if s.x2 > s.x1 else (0, int(products.xyxy[:, 2].max(initial=0)))
        if len(on) == 0 or x2 <= x1:
            continue
        width = float(np.median(on[:, 2] - on[:, 0]))
        covered = np.zeros(x2 - x1, dtype=bool)
        for b in on:
            covered[max(0, b[0] - x1) : max(0, b[2] - x1)] = True
        padded = np.concatenate([[True], covered, [True]])
        starts = np.nonzero(padded[:-1] & ~padded[1:])[0]
        ends = np.nonzero(~padded[:-1] & padded[1:])[0]
        bottom = s.edge_y if s.edge_y is not None else s.y2
        for a, b in zip(starts, ends, strict=True):
            if b - a >= min_ratio * width:
                gaps.append(Gap(s.index, (int(x1 + a), int(s.y1), int(x1 + b), int(bottom))))
    return gaps


def join_gaps(gaps: list[Gap]) -> list[Gap]:
    """Gaps that overlap on one shelf are one gap (their joint box), in shelf order, left to
    right: one empty stretch seen in pieces is reported once."""
    joined: list[Gap] = []
    for g in sorted(gaps, key=lambda g: (g.shelf, g.bbox[0])):
        last = joined[-1] if joined else None
        if last is not None and last.shelf == g.shelf and g.bbox[0] < last.bbox[2]:
            a, b = last.bbox, g.bbox
            joined[-1] = Gap(g.shelf, (a[0], min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
        else:
            joined.append(g)
    return joined


def keep_shelves(
    shelves: list[Shelf], products: Products, gaps: list[Gap], keep: set[int]
) -> tuple[list[Shelf], Products, list[Gap]]:
    """Only the shelves numbered in ``keep``, numbered again from 1 in their order; products
    and gaps follow their shelf (0 where it was dropped)."""
    kept = [s for s in shelves if s.index in keep]
    new = {s.index: n for n, s in enumerate(kept, start=1)}
    products = products.on_shelves(np.array([new.get(int(s), 0) for s in products.shelf]))
    gaps = [replace(g, shelf=new.get(g.shelf, 0)) for g in gaps]
    return [replace(s, index=new[s.index]) for s in kept], products, gaps


def stocked(shelves: list[Shelf], products: Products, gaps: list[Gap]) -> set[int]:
    """The shelves holding a product or a gap. A level holding neither tells nothing and is
    mostly no shelf: a ceiling's lights, a header sign, the floor, a layer of stacked cases,
    a side bay of hanging goods (of 44 such levels on real-shelves and real-shelves-more,
    2 were annotated shelves: their products all missed). A real empty shelf holds gaps."""
    used = {int(s) for s in products.shelf} | {g.shelf for g in gaps}
    return {s.index for s in shelves if s.index in used}
