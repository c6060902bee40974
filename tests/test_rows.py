"""Weak detections are facings only where they stand in a row of sure ones."""

from __future__ import annotations

import numpy as np

from shelfwatch.vision.rows import row_facings


def _row(xs: list[int], bottom: int = 300, height: int = 100, width: int = 60) -> np.ndarray:
    return np.array([[x, bottom - height, x + width, bottom] for x in xs], np.float32)


def _take(
    weak: np.ndarray,
    sure: np.ndarray | None = None,
    ends: tuple[float, float] | None = None,
    width: float | None = None,
    **voids: np.ndarray,
) -> list[bool]:
    sure = _row([0, 70, 140, 350, 420]) if sure is None else sure
    shelf = np.ones(len(sure), int)
    scores = np.linspace(0.2, 0.16, len(weak)).astype(np.float32)
    return row_facings(
        sure,
        shelf,
        weak,
        scores,
        np.ones(len(weak), int),
        voids.get("at"),
        voids.get("scores"),
        None if ends is None else {1: ends},
        width,
    ).tolist()


def test_a_weak_box_in_the_row_fills_the_space_no_sure_box_covers() -> None:
    assert _take(_row([210, 280])) == [True, True]


def test_off_the_row_too_small_or_beyond_its_ends_it_is_not_a_facing() -> None:
    header = _row([210], bottom=180)  # standing above the row: a sign, a stacked case
    sliver = np.array([[212, 200, 230, 300]], np.float32)  # a third of a facing wide
    flat = _row([210], height=40)  # a price card on the shelf edge
    beyond = _row([520])  # past the row's last product: the fixture's side
    assert _take(np.concatenate([header, sliver, flat, beyond])) == [False] * 4


def test_the_shelf_edge_not_the_row_ends_the_row() -> None:
    """The last facing of a shelf may be the weak one: past the row's last sure product but
    on the shelf's edge it is taken; past the edge's end (the fixture's side) it is not, nor
    a product the photo's side cuts (a part of it seen; a capture's next frame sees it)."""
    last, side = _row([490]), _row([620])
    assert _take(np.concatenate([last, side]), ends=(0, 560)) == [True, False]
    assert _take(last) == [False]  # without the edge's ends: the row's last product ends it
    assert _take(last, ends=(0, 560), width=1000) == [True]
    assert _take(last, ends=(0, 560), width=552) == [False]  # the box ends at the side
    # Within the row, a box at the photo's side is a facing as before.
    assert _take(_row([210]), ends=(0, 560), width=270) == [True]


def test_two_weak_peaks_on_one_product_are_one_facing() -> None:
    weak = np.concatenate([_row([210]), _row([215])])
    assert _take(weak) == [True, False]


def test_a_weak_box_on_a_sure_box_or_a_surer_void_is_not_taken() -> None:
    on_sure = _row([150])
    assert _take(on_sure) == [False]
    void = _row([205], width=70)
    assert _take(_row([210]), at=void, scores=np.array([0.5], np.float32)) == [False]
    assert _take(_row([210]), at=void, scores=np.array([0.1], np.float32)) == [True]


def test_a_row_of_too_few_sure_products_vouches_for_nothing() -> None:
    assert _take(_row([210]), sure=_row([0, 350])) == [False]
