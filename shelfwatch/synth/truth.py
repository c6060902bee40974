"""Ground truth of rendered photos as ShelfScenes: what a perfect segmenter would return."""

from __future__ import annotations

import numpy as np

from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene


def truth_scene(
    image_info: dict, annotations: list[dict], categories: dict[int, str], truth: dict
) -> ShelfScene:
    """The exact scene of one rendered photo (COCO boxes with SKUs, shelves, gaps)."""
    boxes = [
        [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
        for a in annotations
    ]
    products = Products(
        xyxy=np.array(boxes).reshape(-1, 4),
        scores=np.ones(len(boxes)),
        shelf=np.array([a["shelf"] for a in annotations]),
        sku=[categories[a["category_id"]] for a in annotations],
    )
    shelves = [
        Shelf(s["index"], s["y1"], s["y2"], 0, image_info["width"], s["edge_y"])
        for s in truth["shelves"]
    ]
    gaps = [
        Gap(g["shelf"], tuple(g["bbox"]), g.get("width_cm"), g.get("missing_facings"))
        for g in truth["gaps"]
    ]
    return ShelfScene(
        width=image_info["width"],
        height=image_info["height"],
        shelves=shelves,
        products=products,
        gaps=gaps,
        backend="truth",
    )
