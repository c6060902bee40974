"""A backend's predictions against labels: COCO AP (pycocotools' COCOeval), counts, gaps."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from shelfwatch.core.scene import ShelfScene
from shelfwatch.labels.coco import GAP, PRODUCT, LabeledImage, LabeledObject, object_mask


@dataclass
class Scored:
    """One labeled photo with what the backend made of it."""

    truth: LabeledImage
    predicted: list[LabeledObject]
    scene: ShelfScene


def _segmentation(obj: LabeledObject) -> object:
    if obj.rle is not None:
        return {"size": obj.rle["size"], "counts": str(obj.rle["counts"])}
    x1, y1, x2, y2 = obj.bbox
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _coco_eval(photos: list[Scored], category_of: dict[str, str], iou_type: str) -> COCOeval | None:
    """COCOeval over products, categories renamed by ``category_of`` (gaps left out)."""
    names = sorted(
        {category_of[o.category] for p in photos for o in p.truth.objects if o.category != GAP}
    )
    if not names:
        return None
    ids = {n: i for i, n in enumerate(names, start=1)}
    gt_anns, dt_anns = [], []
    for image_id, p in enumerate(photos, start=1):
        for o in p.truth.objects:
            if o.category == GAP:
                continue
            x1, y1, x2, y2 = o.bbox
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": image_id,
                    "category_id": ids[category_of[o.category]],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": o.iscrowd,
                    "segmentation": _segmentation(o),
                }
            )
        for o in p.predicted:
            name = category_of.get(o.category, o.category)
            if o.category == GAP or name not in ids:
                continue
            x1, y1, x2, y2 = o.bbox
            ann = {
                "image_id": image_id,
                "category_id": ids[name],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": o.score if o.score is not None else 1.0,
            }
            if iou_type == "segm":
                ann["segmentation"] = _segmentation(o)
            dt_anns.append(ann)
    gt = COCO()
    gt.dataset = {
        "images": [
            {"id": i, "width": p.truth.width, "height": p.truth.height}
            for i, p in enumerate(photos, start=1)
        ],
        "categories": [{"id": i, "name": n} for n, i in ids.items()],
        "annotations": gt_anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        gt.createIndex()
        dt = gt.loadRes(dt_anns) if dt_anns else None
        if dt is None:
            return None
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _ap50_per_category(ev: COCOeval) -> dict[str, float]:
    precision = ev.eval["precision"]  # [iou, recall, category, area, max dets]
    out = {}
    for k, cid in enumerate(ev.params.catIds):
        p = precision[0, :, k, 0, -1]
        out[ev.cocoGt.cats[cid]["name"]] = float(np.mean(p[p > -1])) if (p > -1).any() else 0.0
    return out


def _mape(pairs: list[tuple[int, int]]) -> float | None:
    errs = [abs(pred - truth) / truth for truth, pred in pairs if truth > 0]
    return round(100 * float(np.mean(errs)), 2) if errs else None


def _shelf_of(box: tuple[float, ...], scene: ShelfScene) -> int | None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for s in scene.shelves:
        bottom = s.edge_y if s.edge_y is not None else s.y2
        if s.y1 <= cy <= bottom and s.x1 - 5 <= cx <= s.x2 + 5:
            return s.index
    return None


def _inside(box: tuple[float, ...], area: tuple[float, ...]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= cx <= area[2] and area[1] <= cy <= area[3]


def _overlap(a: list[LabeledObject], b: list[LabeledObject], h: int, w: int) -> tuple[int, int]:
    """(intersection, union) in px of the area ``a``'s objects cover and ``b``'s cover."""
    masks = []
    for objs in (a, b):
        m = np.zeros((h, w), bool)
        for o in objs:
            m |= object_mask(o, h, w)
        masks.append(m)
    return int((masks[0] & masks[1]).sum()), int((masks[0] | masks[1]).sum())


def evaluate(photos: list[Scored]) -> dict[str, object]:
    """COCO box AP, AP50, AP75 and mask AP over products (any SKU counts as a product),
    AP50 and count MAPE per category, count MAPE per photo and per shelf, gap IoU, and the
    product area's IoU (all photos' pixels pooled: what a referring model is judged by)."""
    categories = {o.category for p in photos for o in p.truth.objects} | {
        o.category for p in photos for o in p.predicted
    }
    agnostic = {c: PRODUCT for c in categories}
    box = _coco_eval(photos, agnostic, "bbox")
    has_masks = any(o.rle is not None for p in photos for o in p.truth.objects)
    segm = _coco_eval(photos, agnostic, "segm") if has_masks else None
    per_cat = _coco_eval(photos, {c: c for c in categories}, "bbox")
    ap50s = _ap50_per_category(per_cat) if per_cat else {}

    def products(objs: list[LabeledObject], crowd: list[LabeledObject]) -> list[LabeledObject]:
        """Products, without those centred in a crowd box (an area left unlabeled)."""
        return [
            o
            for o in objs
            if o.category != GAP
            and not o.iscrowd
            and not any(_inside(o.bbox, c.bbox) for c in crowd)
        ]

    photo_counts = []
    shelf_counts: list[tuple[int, int]] = []
    gap_ious = []
    product_area = np.zeros(2, np.int64)  # intersection, union
    by_category: dict[str, list[tuple[int, int]]] = {}
    for p in photos:
        crowd = [o for o in p.truth.objects if o.iscrowd]
        truth, predicted = products(p.truth.objects, crowd), products(p.predicted, crowd)
        photo_counts.append((len(truth), len(predicted)))
        truth_shelves = Counter(_shelf_of(o.bbox, p.scene) for o in truth)
        pred_shelves = Counter(_shelf_of(o.bbox, p.scene) for o in predicted)
        shelf_counts += [(truth_shelves[k], pred_shelves[k]) for k in truth_shelves]
        truth_cats = Counter(o.category for o in truth)
        pred_cats = Counter(o.category for o in predicted)
        for c, n in truth_cats.items():
            by_category.setdefault(c, []).append((n, pred_cats[c]))
        h, w = p.truth.height, p.truth.width
        truth_gaps = [o for o in p.truth.objects if o.category == GAP]
        pred_gaps = [o for o in p.predicted if o.category == GAP]
        if truth_gaps or pred_gaps:
            inter, union = _overlap(truth_gaps, pred_gaps, h, w)
            gap_ious.append(inter / union if union else 1.0)
        product_area += _overlap(
            [o for o in p.truth.objects if o.category != GAP],
            [o for o in p.predicted if o.category != GAP],
            h,
            w,
        )

    def stat(ev: COCOeval | None, k: int) -> float | None:
        return round(float(ev.stats[k]), 4) if ev is not None else None

    return {
        "images": len(photos),
        "ap": stat(box, 0) if box else 0.0,
        "ap50": stat(box, 1) if box else 0.0,
        "ap75": stat(box, 2) if box else 0.0,
        "mask_ap": stat(segm, 0) if has_masks else None,
        "count_mape": _mape(photo_counts),
        "count_mape_shelf": _mape(shelf_counts),
        "gap_iou": round(float(np.mean(gap_ious)), 4) if gap_ious else None,
        "product_iou": round(float(product_area[0] / product_area[1]), 4)
        if product_area[1]
        else None,
        "per_category": [
            {"category": c, "ap50": round(ap50s.get(c, 0.0), 4), "count_mape": _mape(pairs)}
            for c, pairs in sorted(by_category.items())
        ],
    }
