"""``shelfwatch bench accuracy``: the backend against ground truth, rendered and real.

(a) Rendered photos from a seed never used for tuning: products (precision/recall at IoU
0.5, count MAPE), gaps, shelf rows, SKU labels and compliance findings (also fed the ground
truth, which checks the compliance logic alone). (b) ``../shared/real-shelves``: shelf
recall. (c) ``../shared/real-products``: products at IoU 0.5 inside the annotated region,
count MAPE; reported per camera so a held-out camera shows generalisation.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shelfwatch.core.imageio import load_image
from shelfwatch.core.scene import Shelf, ShelfScene
from shelfwatch.labels.shared import read_boxes
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.planogram.compliance import check_compliance
from shelfwatch.planogram.formats import read_catalog, read_planogram
from shelfwatch.planogram.sku import load_signatures
from shelfwatch.synth.truth import truth_scene
from shelfwatch.vision.annotate import render_overlay
from shelfwatch.vision.base import Segmenter
from shelfwatch.vision.detector.data import bays_of
from shelfwatch.vision.detector.infer import INPUT_SIDE
from shelfwatch.vision.evaluation import (
    Tally,
    gap_matches,
    greedy_match,
    interval_iou,
    iou_matrix,
    matched_truth,
    points_in_box,
    shelf_recall,
    stacked,
)
from shelfwatch.vision.frame import reading_side


@dataclass
class RenderedScore:
    photos: int = 0
    products: Tally = field(default_factory=Tally)
    gaps: Tally = field(default_factory=Tally)
    findings: Tally = field(default_factory=Tally)
    findings_truth: Tally = field(default_factory=Tally)
    shelf_exact: int = 0
    sku_correct: int = 0
    sku_total: int = 0
    count_errors: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "set": "rendered",
            "photos": self.photos,
            "count_mape": round(float(np.mean(self.count_errors)) * 100, 2),
            "precision": round(self.products.precision, 4),
            "recall": round(self.products.recall, 4),
            "gap_precision": round(self.gaps.precision, 4),
            "gap_recall": round(self.gaps.recall, 4),
            "gap_f1": round(self.gaps.f1, 4),
            "shelf_rows_exact": round(self.shelf_exact / max(1, self.photos), 4),
            "sku_accuracy": round(self.sku_correct / max(1, self.sku_total), 4),
            "findings_precision": round(self.findings.precision, 4),
            "findings_recall": round(self.findings.recall, 4),
            "findings_precision_truth": round(self.findings_truth.precision, 4),
            "findings_recall_truth": round(self.findings_truth.recall, 4),
            "ms_per_photo": round(1000 * self.seconds / max(1, self.photos), 1),
        }


class Resized:
    """A segmenter that reads every photo resized by ``factor`` and gives its scene back in
    the photo's own pixels, so the same truth scores it: how the figures hold at another
    camera's resolution (``bench accuracy --photo-scale``)."""

    def __init__(self, segmenter: Segmenter, factor: float) -> None:
        if not 0.1 <= factor <= 4:
            raise ValueError(f"photo scale {factor} is outside 0.1-4")
        self.segmenter, self.factor = segmenter, factor
        self.name = segmenter.name

    def segment(self, image: np.ndarray) -> ShelfScene:
        h, w = image.shape[:2]
        size = (max(1, round(w * self.factor)), max(1, round(h * self.factor)))
        # Area averaging to shrink (as a camera with fewer pixels would see), cubic to grow.
        shrink = self.factor < 1
        resized = cv2.resize(
            image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        )
        scene = self.segmenter.segment(resized)
        back = scene.scaled(1 / self.factor)
        return replace(back, width=w, height=h)

    def __getattr__(self, name: str) -> Any:
        # SKU labelling reads the photo itself with the scene in its pixels: the backend's
        # own, where it has one. Not its batch reading, which would skip the resize.
        if name == "identify":
            return getattr(self.segmenter, name)
        raise AttributeError(name)


def _boxes(anns: list[dict]) -> np.ndarray:
    return np.array(
        [
            [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
            for a in anns
        ]
    ).reshape(-1, 4)


def _finding_keys(scene: ShelfScene, plan: list, catalog: dict) -> set[tuple]:
    return {
        (f.type, f.shelf, f.position, f.expected_sku, f.observed_sku)
        for f in check_compliance(scene, plan, catalog).findings
    }


def score_rendered(
    data: Path,
    segmenter: Segmenter,
    overlay: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RenderedScore:
    """Score a rendered set (as written by ``shelfwatch synth``)."""
    items = read_catalog(data / "catalog.csv")
    catalog = {i.sku: i for i in items}
    signatures = load_signatures(data, items)
    plans = read_planogram(data / "planogram.csv", catalog)
    truth = json.loads((data / "truth.json").read_text())
    coco = json.loads((data / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    anns: dict[int, list[dict]] = defaultdict(list)
    for a in coco["annotations"]:
        anns[a["image_id"]].append(a)
    score = RenderedScore()
    for n, img in enumerate(coco["images"]):
        t = truth[img["file_name"]]
        plan = [p for p in plans if p.planogram == t["planogram"]]
        context = FixtureContext(
            width_cm=100, planogram=plan, catalog=catalog, signatures=signatures
        )
        image = load_image(data / "images" / img["file_name"])
        start = time.perf_counter()
        scene = analyze(image, segmenter, context)
        score.seconds += time.perf_counter() - start
        score.photos += 1
        truth_boxes = _boxes(anns[img["id"]])
        score.products.add(
            greedy_match(scene.products.xyxy, truth_boxes), len(scene.products), len(truth_boxes)
        )
        score.count_errors.append(
            abs(len(scene.products) - len(truth_boxes)) / max(1, len(truth_boxes))
        )
        score.gaps.add(
            gap_matches(
                [(g.shelf, g.bbox) for g in scene.gaps],
                [(g["shelf"], tuple(g["bbox"])) for g in t["gaps"]],
            ),
            len(scene.gaps),
            len(t["gaps"]),
        )
        bands = [(s.y1, s.y2) for s in scene.shelves]
        truth_bands = [(s["y1"], s["y2"]) for s in t["shelves"]]
        score.shelf_exact += len(bands) == len(truth_bands) and shelf_recall(
            bands, truth_bands
        ) == len(truth_bands)
        if len(scene.products) and len(truth_boxes):
            iou = iou_matrix(scene.products.xyxy, truth_boxes)
            for i in range(len(scene.products)):
                k = int(np.argmax(iou[i]))
                if iou[i, k] >= 0.5:
                    score.sku_total += 1
                    score.sku_correct += (
                        scene.products.sku[i] == names[anns[img["id"]][k]["category_id"]]
                    )
        expected = {
            (f["type"], f["shelf"], f["position"], f["expected_sku"], f["observed_sku"])
            for f in t["expected_findings"]
        }
        for tally, seen in (
            (score.findings, scene),
            (score.findings_truth, truth_scene(img, anns[img["id"]], names, t)),
        ):
            got = _finding_keys(seen, plan, catalog)
            tally.add(len(got & expected), len(got), len(expected))
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(overlay / f"{Path(img['file_name']).stem}.png"), render_overlay(image, scene)
            )
        if progress:
            progress(n + 1, len(coco["images"]))
    return score


def score_real_shelves(
    folder: Path, segmenter: Segmenter, overlay: Path | None = None
) -> list[dict[str, Any]]:
    """Per photo: annotated shelves found (vertical IoU >= 0.5), failures, time."""
    rows = []
    for name, boxes in sorted(read_boxes(folder / "shelves.csv").items()):
        truth = [(b[1], b[3]) for b in boxes]
        try:
            image = load_image(folder / "images" / name)
            start = time.perf_counter()
            scene = segmenter.segment(image)
            ms = (time.perf_counter() - start) * 1000
        except Exception as exc:  # noqa: BLE001 - a failed photo is a figure, not a crash
            rows.append(
                {
                    "set": "real-shelves",
                    "image": name,
                    "side_by_side": annotated_bays(boxes) >= 2,
                    "failed": str(exc),
                    "shelves": len(truth),
                    "found": 0,
                }
            )
            continue
        # A detected shelf's band: from the products' tops down to its edge strip.
        bands = [(s.y1, s.y2) for s in scene.shelves]
        matches = shelf_matches(scene.shelves, boxes)
        rows.append(
            {
                "set": "real-shelves",
                "image": name,
                "side_by_side": annotated_bays(boxes) >= 2,
                "shelves": len(truth),
                "found": shelf_recall(bands, truth),
                "detected": len(bands),
                **matches,
                "ms": round(ms, 1),
                "low_confidence": bool(scene.quality.get("low_confidence")),
            }
        )
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(overlay / f"shelves-{Path(name).stem}.png"), render_overlay(image, scene)
            )
    return rows


def score_real_products(
    folder: Path, segmenter: Segmenter, overlay: Path | None = None
) -> list[dict[str, Any]]:
    """Per photo: product precision/recall at IoU 0.5 inside the annotated region."""
    labels = read_boxes(folder / "labels.csv")
    regions = {k: v[0] for k, v in read_boxes(folder / "regions.csv").items()}
    rows = []
    for name in sorted(labels):
        truth = np.array(labels[name])
        image = load_image(folder / "images" / name)
        start = time.perf_counter()
        scene = segmenter.segment(image)
        ms = (time.perf_counter() - start) * 1000
        region = regions.get(name, (0, 0, image.shape[1], image.shape[0]))
        pred = scene.products.xyxy[points_in_box(scene.products.centers, region)]
        tp = greedy_match(pred, truth)
        rows.append(
            {
                "set": "real-products",
                "image": name,
                "camera": name.split("_")[0],
                "truth": len(truth),
                "detected": int(len(pred)),
                "tp": tp,
                "ms": round(ms, 1),
            }
        )
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(overlay / f"products-{Path(name).stem}.png"), render_overlay(image, scene)
            )
    return rows


# Labeled products by their height at the detector's input (px): (name, from, to).
INPUT_HEIGHTS = (("under_20", 0, 20), ("20_40", 20, 40), ("40_up", 40, np.inf))


def score_supermarket_products(
    shared: Path, segmenter: Segmenter, part: str
) -> list[dict[str, Any]]:
    """Per photo of ShelfWatch's own product boxes on ``real-shelves-more`` (``part`` as in
    ``labels.shared.supermarket_products``): precision and recall at IoU 0.5 of the
    detections whose centre lies outside the unlabeled (crowd) parts, and per shelf box of
    its ``shelves.csv`` that holds labeled products, the labeled and detected products whose
    centre lies in it (the counting rule of ``real-shelves/counts.csv``)."""
    from shelfwatch.labels.shared import supermarket_products

    folder = shared / "real-shelves-more"
    shelves = read_boxes(folder / "shelves.csv")
    rows = []
    for file, labeled in supermarket_products(shared, part):
        truth = _boxes_of(labeled.objects, crowd=False)
        crowd = _boxes_of(labeled.objects, crowd=True)
        found = segmenter.segment(load_image(file)).products
        unlabeled = np.zeros(len(found.xyxy), bool)
        for box in crowd:
            unlabeled |= points_in_box(found.centers, tuple(box))
        pred, centres = found.xyxy[~unlabeled].astype(float), found.centers[~unlabeled]
        truth_centres = (truth[:, :2] + truth[:, 2:]) / 2
        counts = [
            (int(points_in_box(truth_centres, box).sum()), int(points_in_box(centres, box).sum()))
            for box in shelves.get(labeled.file_name, [])
        ]
        hit = matched_truth(pred, truth)
        # Each labeled product's height at the detector's input, and whether it is stacked:
        # where the misses are (packs lying flat in stacks, rows of small items).
        scale = INPUT_SIDE / reading_side(labeled.height, labeled.width)
        tall = (truth[:, 3] - truth[:, 1]) * scale
        on_top = stacked(truth)
        kinds = {"stacked": on_top, "alone": ~on_top} | {
            f"input_height_{name}": (tall >= lo) & (tall < hi) for name, lo, hi in INPUT_HEIGHTS
        }
        rows.append(
            {
                "set": "real-shelves-more-products",
                "image": labeled.file_name,
                "part": part,
                "truth": len(truth),
                "detected": len(pred),
                "tp": int(hit.sum()),
                "shelves": [{"products": t, "detected": d} for t, d in counts if t > 0],
                # Per kind: labeled products, and those matched.
                "kinds": {k: [int(m.sum()), int((m & hit).sum())] for k, m in kinds.items()},
            }
        )
    return rows


def _boxes_of(objects: list, crowd: bool) -> np.ndarray:
    boxes = [o.bbox for o in objects if bool(o.iscrowd) == crowd]
    return np.array(boxes, dtype=float).reshape(-1, 4)


def summarise_supermarket_products(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    tally = Tally()
    for r in rows:
        tally.add(r["tp"], r["detected"], r["truth"])
    # Per shelf box, as real-shelves' counted shelves are summarised.
    counts = summarise_counts(
        [{"image": r["image"], **s} for r in rows for s in r["shelves"]], label
    )
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        for kind, (n, found) in r["kinds"].items():
            kinds[kind][0] += n
            kinds[kind][1] += found
    total = max(1, sum(r["truth"] for r in rows))
    return {
        "set": "real-shelves-more-products",
        "part": label,
        "photos": len(rows),
        "precision": round(tally.precision, 4),
        "recall": round(tally.recall, 4),
        # Recall of each kind of labeled product, and its share of them all.
        **{f"recall_{k}": round(found / max(1, n), 4) for k, (n, found) in kinds.items()},
        **{f"share_{k}": round(n / total, 4) for k, (n, _) in kinds.items()},
        **{k: v for k, v in counts.items() if k not in ("set", "part", "photos")},
    }


def summarise_products(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    tally = Tally()
    errors = []
    for r in rows:
        tally.add(r["tp"], r["detected"], r["truth"])
        errors.append(abs(r["detected"] - r["truth"]) / max(1, r["truth"]))
    return {
        "set": "real-products",
        "part": label,
        "photos": len(rows),
        "precision": round(tally.precision, 4),
        "recall": round(tally.recall, 4),
        "count_mape": round(100 * float(np.mean(errors)), 2) if errors else None,
        "ms_per_photo": round(float(np.mean([r["ms"] for r in rows])), 1) if rows else None,
    }


def summarise_shelves(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    found = sum(r["found"] for r in rows)
    total = sum(r["shelves"] for r in rows)
    timed = [r["ms"] for r in rows if "ms" in r]
    return {
        "set": "real-shelves",
        "part": label,
        "photos": len(rows),
        "shelf_recall": round(found / max(1, total), 4),
        "shelf_precision": round(
            sum(r.get("correct", 0) for r in rows) / max(1, sum(r.get("judged", 0) for r in rows)),
            4,
        ),
        # One to one: each annotated shelf its own detected shelf (see shelf_matches).
        "shelf_recall_1to1": round(sum(r.get("matched", 0) for r in rows) / max(1, total), 4),
        "shelf_precision_1to1": round(
            sum(r.get("matched_area", 0) for r in rows)
            / max(1, sum(r.get("judged_area", 0) for r in rows)),
            4,
        ),
        "shelf_precision_1to1_columns": round(
            sum(r.get("matched", 0) for r in rows) / max(1, sum(r.get("judged", 0) for r in rows)),
            4,
        ),
        # Photos whose annotators boxed bays side by side against the rest: where the
        # remaining one-to-one misses are (a bay not told from its neighbour).
        **{
            f"shelf_recall_1to1_{kind}": round(
                sum(r.get("matched", 0) for r in part) / max(1, sum(r["shelves"] for r in part)),
                4,
            )
            for kind, part in (
                ("side_by_side", [r for r in rows if r.get("side_by_side")]),
                ("single_bay", [r for r in rows if not r.get("side_by_side")]),
            )
        },
        "photos_side_by_side": sum(1 for r in rows if r.get("side_by_side")),
        "failed_photos": sum(1 for r in rows if "failed" in r),
        "ms_per_photo": round(float(np.mean(timed)), 1) if timed else None,
    }


def annotated_bays(boxes: list[tuple[float, ...]]) -> int:
    """How many bays side by side the annotated shelf boxes show (``bays_of``); a bay needs
    two shelves (a lone box beside a bay is a shelf the annotator cut in pieces)."""
    return sum(1 for bay in bays_of(np.array(boxes, np.float32)) if len(bay) >= 2)


def real_products_coco(folder: Path, cameras: tuple[str, ...]) -> dict[str, Any]:
    """``real-products`` of some cameras as a COCO document (for ``train`` and ``eval``).

    Every product is category ``product``; the parts of a photo outside its annotated region
    become crowd boxes (``iscrowd`` 1), which COCOeval and training both ignore. File names
    are the photos' own, so ``--images`` is ``real-products/images`` itself (nothing copied).
    """
    from shelfwatch.labels.coco import PRODUCT, to_coco
    from shelfwatch.labels.shared import real_products

    return to_coco(real_products(folder, cameras), [PRODUCT], segmentation="rle")


def shelf_matches(shelves: list[Shelf], boxes: list[tuple[float, ...]]) -> dict[str, int]:
    """Detected shelves against annotated shelf boxes.

    ``judged``: detected shelves centred within the annotated columns (side bays are not
    annotated); ``correct``: judged ones that some annotated shelf overlaps in columns and
    vertically with IoU >= 0.5 (a lower bound: an unannotated shelf inside those columns, an
    aisle's side bay, counts as wrong). ``matched``: the same test one to one (Hungarian
    assignment on the vertical IoU), so one band over three annotated shelves matches one of
    them, not three. ``judged_area`` / ``matched_area``: those centred within the box around
    all annotated shelves, where the annotators boxed every shelf."""
    from scipy.optimize import linear_sum_assignment

    lo, hi = min(b[0] for b in boxes), max(b[2] for b in boxes)
    top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
    judged = [s for s in shelves if lo <= (s.x1 + s.x2) / 2 <= hi]
    out = dict.fromkeys(("judged", "correct", "matched", "judged_area", "matched_area"), 0)
    if not judged:
        return out
    in_area = np.array([top <= (s.y1 + s.y2) / 2 <= bottom for s in judged])
    iou = np.array(
        [
            [
                interval_iou((b[1], b[3]), (s.y1, s.y2)) if min(b[2], s.x2) > max(b[0], s.x1) else 0
                for s in judged
            ]
            for b in boxes
        ]
    )
    rows, cols = linear_sum_assignment(-iou)
    hit = cols[iou[rows, cols] >= 0.5]
    out |= {
        "judged": len(judged),
        "correct": int((iou >= 0.5).any(axis=0).sum()),
        "matched": len(hit),
        "judged_area": int(in_area.sum()),
        "matched_area": int(in_area[hit].sum()),
    }
    return out


def score_real_counts(folder: Path, segmenter: Segmenter) -> list[dict[str, Any]]:
    """Per annotated shelf of ``counts.csv``: a person's product count and the products
    detected whose centre lies in the shelf's box (as the shared README says to score)."""
    rows = []
    by_image: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (folder / "counts.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_image[row["image"]].append(row)
    for name, shelves in sorted(by_image.items()):
        image = load_image(folder / "images" / name)
        centres = segmenter.segment(image).products.centers
        for row in shelves:
            box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            rows.append(
                {
                    "set": "real-shelves-counts",
                    "image": name,
                    "shelf": int(row["shelf"]),
                    "products": int(row["products"]),
                    "detected": int(points_in_box(centres, box).sum()),
                }
            )
    return rows


# Shelves by how many products a person counted on them: where the count error lies (a
# crowded shelf of small items and a shelf of a few large packs fail differently).
SHELF_SIZES = ((1, 4), (5, 9), (10, 19), (20, None))


def summarise_counts(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Per-shelf count error (MAPE), its sign (``count_bias_shelf``: the mean of detected
    minus counted over counted, negative where products are missed), and the MAPE of the
    shelves of each size in ``SHELF_SIZES`` (``count_mape_shelf_20_up``: 20 or more)."""
    signed = np.array([(r["detected"] - r["products"]) / max(1, r["products"]) for r in rows])
    counted = np.array([r["products"] for r in rows])
    by_size = {}
    for lo, hi in SHELF_SIZES:
        name = f"count_mape_shelf_{lo}_{hi}" if hi else f"count_mape_shelf_{lo}_up"
        part = signed[(counted >= lo) & (counted <= hi)] if hi else signed[counted >= lo]
        by_size[name] = round(100 * float(np.abs(part).mean()), 2) if len(part) else None
    return {
        "set": "real-shelves-counts",
        "part": label,
        "photos": len({r["image"] for r in rows}),
        "shelves": len(rows),
        "count_mape_shelf": round(100 * float(np.abs(signed).mean()), 2) if len(rows) else None,
        "count_bias_shelf": round(100 * float(signed.mean()), 2) if len(rows) else None,
        **by_size,
        "products": sum(r["products"] for r in rows),
        "detected": sum(r["detected"] for r in rows),
    }


def score_real_gaps(folder: Path, segmenter: Segmenter, part: str = "all") -> list[dict[str, Any]]:
    """Per photo of ``real-gaps`` (``part``: ``all``, ``train`` or ``held-out``): voids found
    and reported gaps right, by area (a void is found when reported gaps cover at least half
    of it; a reported gap is right when at least half of it lies on voids), and the pixel
    areas for the IoU."""
    from shelfwatch.labels.shared import held_out

    rows = []
    for name, voids in sorted(read_boxes(folder / "labels.csv").items()):
        if part != "all" and held_out(name) != (part == "held-out"):
            continue
        image = load_image(folder / "images" / name)
        start = time.perf_counter()
        scene = segmenter.segment(image)
        ms = (time.perf_counter() - start) * 1000
        h, w = image.shape[:2]
        truth = _box_union(voids, h, w)
        reported = _box_union([g.bbox for g in scene.gaps], h, w)
        found = sum(1 for v in voids if _share_on(v, reported) >= 0.5)
        right = sum(1 for g in scene.gaps if _share_on(g.bbox, truth) >= 0.5)
        rows.append(
            {
                "set": "real-gaps",
                "image": name,
                "part": "held-out" if held_out(name) else "train",
                "voids": len(voids),
                "found": found,
                "reported": len(scene.gaps),
                "right": right,
                "inter_px": int((truth & reported).sum()),
                "union_px": int((truth | reported).sum()),
                "ms": round(ms, 1),
            }
        )
    return rows


def _box_union(boxes: list, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        out[int(max(0, y1)) : int(np.ceil(y2)), int(max(0, x1)) : int(np.ceil(x2))] = True
    return out


def _share_on(box: tuple, area: np.ndarray) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    part = area[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    return float(part.mean()) if part.size else 0.0


def summarise_gaps(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    voids, reported = sum(r["voids"] for r in rows), sum(r["reported"] for r in rows)
    return {
        "set": "real-gaps",
        "part": label,
        "photos": len(rows),
        "void_recall": round(sum(r["found"] for r in rows) / max(1, voids), 4),
        "gap_precision": round(sum(r["right"] for r in rows) / reported, 4) if reported else None,
        "pixel_iou": round(
            sum(r["inter_px"] for r in rows) / max(1, sum(r["union_px"] for r in rows)), 4
        ),
        "voids": voids,
        "reported": reported,
        "ms_per_photo": round(float(np.mean([r["ms"] for r in rows])), 1) if rows else None,
    }


SPEED_SIZES = {"1600x1200": (1600, 1200), "8MP 3264x2448": (3264, 2448)}


def score_speed(photos: list[Path], segmenter: Segmenter, repeats: int = 1) -> list[dict[str, Any]]:
    """Whole-photo analysis time at 1600x1200 and at 8 MP (photos resized to each), the mean
    of each stage where the backend reports its stages (``last_timings``), after a warm-up."""
    rows = []
    images = [load_image(p) for p in photos]
    if images:
        segmenter.segment(cv2.resize(images[0], SPEED_SIZES["1600x1200"]))  # warm-up
    for label, size in SPEED_SIZES.items():
        totals: list[float] = []
        stages: dict[str, list[float]] = defaultdict(list)
        for image in images:
            resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            for _ in range(repeats):
                start = time.perf_counter()
                segmenter.segment(resized)
                totals.append(1000 * (time.perf_counter() - start))
                for stage, ms in getattr(segmenter, "last_timings", {}).items():
                    stages[stage].append(ms)
        rows.append(
            {
                "set": "speed",
                "size": label,
                "photos": len(images),
                "ms_per_photo": round(float(np.mean(totals)), 1) if totals else None,
                "ms_median": round(float(np.median(totals)), 1) if totals else None,
                "stages_ms": {k: round(float(np.mean(v)), 1) for k, v in stages.items()},
            }
        )
    return rows
