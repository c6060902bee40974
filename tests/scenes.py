"""Scenes of one shelf for the planogram steps' tests, and a way to store one."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy.orm import Session

from shelfwatch.core.scene import Products, Shelf, ShelfScene
from shelfwatch.db.convert import insert_rows, scene_rows
from shelfwatch.db.models import Photo, PhotoStatus
from shelfwatch.services import stores

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


def stored_photo(session: Session, scene: ShelfScene, taken: dt.datetime) -> Photo:
    """Store S1 with fixture F1 (100 cm), and a processed photo of F1 taken at ``taken``
    whose results are ``scene``'s, written as the worker writes them."""
    stores.add_store(session, "S1")
    stores.add_fixture(session, "S1", "F1", width_cm=100)
    fixture = stores.get_fixture(session, "S1", "F1")
    photo = Photo(
        store_id=fixture.store_id,
        fixture_id=fixture.id,
        captured_at=taken,
        sha256="0" * 64,
        storage_path="p.png",
        size_bytes=1,
        width=scene.width,
        height=scene.height,
        status=PhotoStatus.done.value,
        processed_at=taken,
    )
    session.add(photo)
    session.flush()
    insert_rows(session, scene_rows(photo.id, scene))
    return photo
