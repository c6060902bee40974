"""ShelfScene <-> rows: what the worker stores and what audits and the dashboard read back."""

from __future__ import annotations

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shelfwatch.core.masks import decode_rle, encode_rle, rle_from_text, rle_to_text
from shelfwatch.core.scene import DETECTOR, Gap, Products, Shelf, ShelfScene
from shelfwatch.db import models


def scene_rows(photo_id: int, scene: ShelfScene) -> dict[type, list[dict[str, object]]]:
    """Row values per table for one analysed photo (for executemany inserts)."""
    p = scene.products
    products = []
    for i in range(len(p)):
        x1, y1, x2, y2 = (int(v) for v in p.xyxy[i])
        # RLE of the mask inside its box (COCO RLE of the crop): encoding a full-image mask
        # per product cost more than the analysis itself on dense shelves.
        rle = rle_to_text(encode_rle(p.box_mask(i))) if p.masks is not None else None
        products.append(
            {
                "photo_id": photo_id,
                "shelf": int(p.shelf[i]),
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "mask_rle": rle,
                "score": float(p.scores[i]),
                "sku": p.sku[i],
                "sku_score": float(p.sku_score[i]),
                "backend": scene.backend,
                "track": int(p.track[i]) if p.track[i] >= 0 else None,
                "source": p.source[i],
            }
        )
    return {
        models.PhotoShelf: [
            {
                "photo_id": photo_id,
                "shelf": s.index,
                "y1": s.y1,
                "y2": s.y2,
                "x1": s.x1,
                "x2": s.x2,
                "edge_y": s.edge_y,
                "bay": s.bay,
            }
            for s in scene.shelves
        ],
        models.ProductInstance: products,
        models.Gap: [
            {
                "photo_id": photo_id,
                "shelf": g.shelf,
                "x1": g.bbox[0],
                "y1": g.bbox[1],
                "x2": g.bbox[2],
                "y2": g.bbox[3],
                "width_px": g.width_px,
                "width_cm": g.width_cm,
                "missing_facings": g.missing_facings,
            }
            for g in scene.gaps
        ],
    }


def insert_rows(session: Session, rows: dict[type, list[dict[str, object]]]) -> None:
    """Insert ``scene_rows``' values, one executemany per table."""
    for table, values in rows.items():
        if values:
            session.execute(insert(table), values)


def load_scene(session: Session, photo: models.Photo, with_masks: bool = True) -> ShelfScene:
    """Rebuild the stored analysis of ``photo``."""
    shelves = session.scalars(
        select(models.PhotoShelf)
        .where(models.PhotoShelf.photo_id == photo.id)
        .order_by(models.PhotoShelf.shelf)
    ).all()
    items = session.scalars(
        select(models.ProductInstance)
        .where(models.ProductInstance.photo_id == photo.id)
        .order_by(models.ProductInstance.id)
    ).all()
    gaps = session.scalars(
        select(models.Gap).where(models.Gap.photo_id == photo.id).order_by(models.Gap.id)
    ).all()
    masks = None
    if with_masks and items and all(i.mask_rle for i in items):
        masks = []
        for i in items:
            masks.append(decode_rle(rle_from_text(i.mask_rle or "")))
    products = Products(
        xyxy=np.array([[i.x1, i.y1, i.x2, i.y2] for i in items]).reshape(-1, 4),
        scores=np.array([i.score for i in items]),
        masks=masks,
        shelf=np.array([i.shelf for i in items]),
        sku=[i.sku for i in items],
        sku_score=np.array([i.sku_score or 0.0 for i in items]),
        track=np.array([-1 if i.track is None else i.track for i in items]),
        # Rows stored before sources were recorded (revision 0007) read as the detector's;
        # their planogram-confirmed facings, if any, were never marked.
        source=[i.source or DETECTOR for i in items],
    )
    return ShelfScene(
        width=photo.width,
        height=photo.height,
        shelves=[Shelf(s.shelf, s.y1, s.y2, s.x1, s.x2, s.edge_y, bay=s.bay or 1) for s in shelves],
        products=products,
        gaps=[Gap(g.shelf, (g.x1, g.y1, g.x2, g.y2), g.width_cm, g.missing_facings) for g in gaps],
        backend=photo.backend or "",
        quality=dict(photo.quality or {}),
    )
