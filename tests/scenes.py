"""Scenes of one shelf for the planogram steps' tests."""

from __future__ import annotations

import numpy as np

from shelfwatch.core.scene import Products, Shelf, ShelfScene

FLOOR = 190  # the shelf's edge, where every pack stands


def one_shelf(
    xyxy: np.ndarray, sku: list[str | None], masks: list[np.ndarray], top: int
) -> ShelfScene:
    """A 400 x 200 photo with one shelf (band ``top``..``FLOOR``) holding these boxes, their
    scores rising from 0.5 to 0.9 left to right as given."""
    return ShelfScene(
        width=400,
        height=200,
        shelves=[Shelf(1, top, FLOOR)],
        products=Products(
            xyxy=xyxy,
            scores=np.linspace(0.5, 0.9, len(xyxy)),
            masks=masks,
            shelf=np.ones(len(xyxy), int),
            sku=sku,
        ),
    )
