"""The real material in ``../shared`` as labeled images, and how each set is split.

Pure readers (no SQL): the benches score on these and ``shelfwatch train --shared`` trains on
them, so both use one definition of which photos are held out. Nothing is copied: file
names point into the shared folders.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

from shelfwatch.labels.coco import GAP, PRODUCT, LabeledImage, LabeledObject, read_coco

# ShelfWatch's own product boxes on photos of real-shelves-more (drawn by eye, row by row:
# see the README), stored as COCO with the unlabeled parts of each photo as crowd boxes.
SUPERMARKET_LABELS = Path(__file__).resolve().parents[1] / "_data" / "labels"
if not SUPERMARKET_LABELS.is_dir():  # a checkout rather than an installed wheel
    SUPERMARKET_LABELS = Path(__file__).resolve().parents[2] / "data" / "labels"
SUPERMARKET_FILE = "real-shelves-more-products.json"  # the first batch: all trained on
SUPERMARKET_BATCH2 = "real-shelves-more-products-batch2.json"  # never trained on


def read_boxes(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """``image,x1,y1,x2,y2,...`` rows as boxes per image."""
    out: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["image"]].append(tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2")))  # type: ignore[arg-type]
    return out


def held_out(name: str, share: float = 1 / 3) -> bool:
    """A fixed, content-free split: the photo's name hashed. Never trained or tuned on."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return digest[0] < 256 * share


def real_gaps(folder: Path, part: str) -> list[tuple[Path, LabeledImage]]:
    """``real-gaps`` photos of one part (``train``, ``held-out`` or ``all``) with their void
    boxes. Products are not labeled there: training learns voids only from these."""
    sizes = {}
    with (folder / "images.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            sizes[row["image"]] = (int(row["width"]), int(row["height"]))
    out = []
    for name, boxes in sorted(read_boxes(folder / "labels.csv").items()):
        if part != "all" and held_out(name) != (part == "held-out"):
            continue
        w, h = sizes[name]
        objects = [LabeledObject(GAP, b) for b in boxes]
        out.append((folder / "images" / name, LabeledImage(name, w, h, objects)))
    return out


def region_strips(
    w: int, h: int, region: tuple[float, float, float, float]
) -> list[tuple[float, float, float, float]]:
    """The parts of a w x h photo outside ``region``, as up to four boxes."""
    rx1, ry1, rx2, ry2 = region
    strips = ((0, 0, w, ry1), (0, ry2, w, h), (0, ry1, rx1, ry2), (rx2, ry1, w, ry2))
    return [s for s in strips if s[2] - s[0] >= 1 and s[3] - s[1] >= 1]


def real_products(folder: Path, cameras: tuple[str, ...]) -> list[LabeledImage]:
    """``real-products`` photos of some cameras; outside each annotated region, crowd boxes."""
    from shelfwatch.core.imageio import load_image

    boxes = read_boxes(folder / "labels.csv")
    regions = {k: v[0] for k, v in read_boxes(folder / "regions.csv").items()}
    images = []
    for name in sorted(boxes):
        if name.split("_")[0] not in cameras:
            continue
        h, w = load_image(folder / "images" / name).shape[:2]
        objects = [LabeledObject(PRODUCT, b) for b in boxes[name]]
        region = regions.get(name, (0, 0, w, h))
        objects += [LabeledObject(PRODUCT, s, iscrowd=1) for s in region_strips(w, h, region)]
        images.append(LabeledImage(name, w, h, objects))
    return images


def supermarket_products(shared: Path, part: str = "train") -> list[tuple[Path, LabeledImage]]:
    """ShelfWatch's own product boxes on ``real-shelves-more`` photos of one part: ``train``
    (the first batch, which the shipped weights learned from), ``held-out`` (the second
    batch: never trained or tuned on) or ``all``."""
    folder = shared / "real-shelves-more" / "images"
    files = {
        "train": (SUPERMARKET_FILE,),
        "held-out": (SUPERMARKET_BATCH2,),
        "all": (SUPERMARKET_FILE, SUPERMARKET_BATCH2),
    }[part]
    return [
        (folder / im.file_name, im)
        for file in files
        for im in read_coco(SUPERMARKET_LABELS / file).images
    ]
