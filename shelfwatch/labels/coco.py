"""COCO instances files: read (ShelfWatch's, CVAT's "COCO 1.0", Label Studio's) and write.

Pure functions over ``LabeledImage``; no SQL. Masks are COCO RLE made by pycocotools from
polygons or RLE, whatever the file holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from shelfwatch.core.errors import BadInputError
from shelfwatch.core.scene import ShelfScene

PRODUCT = "product"  # a product whose SKU is not known
GAP = "gap"
BOX_SLACK = 1.0  # px a box may poke out of its image (rounding in labeling tools)
# Label Studio stores uploads as "<8 hex>-<original name>", under /data/upload/<project>/.
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


@dataclass
class LabeledObject:
    """One labeled or predicted object: category, box (x1, y1, x2, y2), optional mask."""

    category: str
    bbox: tuple[float, float, float, float]
    rle: dict[str, object] | None = None  # full-image COCO RLE, counts as str
    score: float | None = None
    iscrowd: int = 0


@dataclass
class LabeledImage:
    file_name: str
    width: int
    height: int
    objects: list[LabeledObject] = field(default_factory=list)


@dataclass
class CocoFile:
    images: list[LabeledImage]
    categories: list[str]
    warnings: list[str] = field(default_factory=list)


def _segmentation_rle(seg: object, h: int, w: int, where: str) -> dict[str, object] | None:
    """Polygons, uncompressed RLE or compressed RLE -> compressed RLE (counts as str)."""
    if seg is None or seg == [] or seg == {}:
        return None
    try:
        if isinstance(seg, list):
            polygons = [p for p in seg if isinstance(p, list) and len(p) >= 6]
            if not polygons:
                return None
            rle = coco_mask.merge(coco_mask.frPyObjects(polygons, h, w))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            rle = coco_mask.frPyObjects(seg, h, w)
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), str):
            rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
            coco_mask.area(rle)  # raises on a malformed string
        else:
            raise ValueError("neither polygons nor RLE")
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInputError(where, f"unreadable segmentation ({exc})") from None
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def read_coco(path: Path) -> CocoFile:
    """Read and check a COCO instances file; any problem is a BadInputError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(str(path), f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise BadInputError(str(path), "not a UTF-8 text file") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise BadInputError(
            str(path), "not a COCO instances file (images, annotations, categories)"
        )
    try:
        categories = {int(c["id"]): str(c["name"]).strip() for c in data["categories"]}
        images: dict[int, LabeledImage] = {}
        for im in data["images"]:
            images[int(im["id"])] = LabeledImage(
                str(im["file_name"]), int(im["width"]), int(im["height"])
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(str(path), f"malformed image or category entry ({exc})") from None
    for n, ann in enumerate(data["annotations"], start=1):
        where = f"{path.name}: annotation {ann.get('id', f'#{n}')}"
        image = images.get(ann.get("image_id"))  # type: ignore[arg-type]
        if image is None:
            raise BadInputError(where, f"image_id {ann.get('image_id')!r} is not among the images")
        if ann.get("category_id") not in categories:
            raise BadInputError(where, f"category_id {ann.get('category_id')!r} is not a category")
        try:
            x, y, bw, bh = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            raise BadInputError(where, "bbox must be [x, y, width, height]") from None
        if (
            bw <= 0
            or bh <= 0
            or x < -BOX_SLACK
            or y < -BOX_SLACK
            or x + bw > image.width + BOX_SLACK
            or y + bh > image.height + BOX_SLACK
        ):
            raise BadInputError(
                where,
                f"box [{x:g}, {y:g}, {bw:g}, {bh:g}] is outside the "
                f"{image.width}x{image.height} image {image.file_name}",
            )
        box = (max(0.0, x), max(0.0, y), min(image.width, x + bw), min(image.height, y + bh))
        score = ann.get("score")
        image.objects.append(
            LabeledObject(
                categories[ann["category_id"]],
                box,
                _segmentation_rle(ann.get("segmentation"), image.height, image.width, where),
                float(score) if score is not None else None,
                int(ann.get("iscrowd", 0) or 0),
            )
        )
    return CocoFile(list(images.values()), sorted(set(categories.values())))


def resolve_image(images_dir: Path, file_name: str) -> Path | None:
    """The file a COCO ``file_name`` names inside ``images_dir``.

    Tries the relative path, the bare name, and the name without Label Studio's upload
    prefix ("1a2b3c4d-shelf.jpg" for "shelf.jpg").
    """
    name = Path(file_name.replace("\\", "/"))
    candidates = [images_dir / name, images_dir / name.name]
    if _UPLOAD_PREFIX.match(name.name):
        candidates.append(images_dir / _UPLOAD_PREFIX.sub("", name.name))
    candidates += [images_dir / "images" / name.name]  # a folder exported by ShelfWatch
    return next((c for c in candidates if c.is_file()), None)


def scene_objects(scene: ShelfScene, with_gaps: bool = True) -> list[LabeledObject]:
    """A segmented photo as COCO objects: products (SKU or "product") and gaps."""
    p = scene.products
    out = []
    for i in range(len(p)):
        x1, y1, x2, y2 = (float(v) for v in p.xyxy[i])
        mask = p.full_mask(i, scene.height, scene.width)
        out.append(
            LabeledObject(
                p.sku[i] or PRODUCT,
                (x1, y1, x2, y2),
                _encode(mask),
                float(p.scores[i]),
            )
        )
    if with_gaps:
        for g in scene.gaps:
            mask = np.zeros((scene.height, scene.width), bool)
            gx1, gy1, gx2, gy2 = g.bbox
            mask[gy1:gy2, gx1:gx2] = True
            out.append(LabeledObject(GAP, tuple(float(v) for v in g.bbox), _encode(mask), 1.0))  # type: ignore[arg-type]
    return out


def _encode(mask: np.ndarray) -> dict[str, object]:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _decode(rle: dict[str, object]) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": str(rle["counts"]).encode("ascii")})


def object_mask(obj: LabeledObject, height: int, width: int) -> np.ndarray:
    """The object's full-image mask (bool): its segmentation, or its box when it has none."""
    if obj.rle is not None:
        return _decode(obj.rle).astype(bool)
    mask = np.zeros((height, width), bool)
    x1, y1, x2, y2 = (int(round(v)) for v in obj.bbox)
    mask[max(0, y1) : y2, max(0, x1) : x2] = True
    return mask


def _polygons(rle: dict[str, object]) -> list[list[float]]:
    import cv2

    mask = _decode(rle)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def to_coco(
    images: list[LabeledImage], categories: list[str], segmentation: str = "rle"
) -> dict[str, object]:
    """A COCO instances document; ``segmentation`` "rle" or "polygon" (for Label Studio)."""
    cat_ids = {name: i for i, name in enumerate(categories, start=1)}
    doc: dict[str, list[dict[str, object]]] = {
        "images": [],
        "categories": [
            {"id": i, "name": name, "supercategory": "shelf" if name == GAP else "product"}
            for name, i in cat_ids.items()
        ],
        "annotations": [],
    }
    for image_id, image in enumerate(images, start=1):
        doc["images"].append(
            {
                "id": image_id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
            }
        )
        for obj in image.objects:
            x1, y1, x2, y2 = obj.bbox
            ann: dict[str, object] = {
                "id": len(doc["annotations"]) + 1,
                "image_id": image_id,
                "category_id": cat_ids[obj.category],
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "iscrowd": obj.iscrowd,
            }
            if obj.rle is not None:
                raw = {"size": obj.rle["size"], "counts": str(obj.rle["counts"]).encode("ascii")}
                ann["area"] = int(coco_mask.area(raw))
                ann["segmentation"] = obj.rle if segmentation == "rle" else _polygons(obj.rle)
            else:
                ann["area"] = round((x2 - x1) * (y2 - y1), 2)
                ann["segmentation"] = [[x1, y1, x2, y1, x2, y2, x1, y2]]
            if obj.score is not None:
                ann["score"] = round(obj.score, 4)
            doc["annotations"].append(ann)
    return {"info": {"description": "ShelfWatch", "version": "1.0"}, "licenses": [], **doc}
