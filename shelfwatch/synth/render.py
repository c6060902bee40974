"""Render shelf photos from a catalog and planograms, with exact ground truth.

Output layout of ``DIR``: ``images/*.jpg``, ``annotations.json`` (COCO, category = SKU),
``catalog.csv``, ``planogram.csv``, ``refs/<sku>.png``, ``photos.csv`` (file, store, fixture,
capture time: an ingest manifest) and ``truth.json`` (per photo: store,
fixture, capture time, shelves with their SKU sequences, gaps, perturbations and the
compliance findings they should produce).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from shelfwatch.core.masks import encode_rle
from shelfwatch.planogram.formats import (
    CatalogItem,
    PlanogramPosition,
    expected_layout,
    write_csv,
)
from shelfwatch.synth.catalog import ProductLook, make_catalog, make_planogram
from shelfwatch.synth.draw import draw_back_panel, draw_product, draw_shelf_edge

BACK_COLORS = [(58, 58, 62), (46, 50, 54), (70, 66, 64), (40, 40, 44)]
EDGE_COLORS = [(222, 222, 218), (200, 204, 208), (235, 232, 226)]


@dataclass
class SynthConfig:
    """What to render. Defaults give the bundled sample set (2 stores x 2 fixtures)."""

    photos: int = 20
    seed: int = 0
    stores: tuple[str, ...] = ("S001", "S002")
    fixtures: tuple[str, ...] = ("F01", "F02")
    skus: int = 16
    width_px: int = 1024
    fixture_width_cm: float = 100.0
    shelves: int = 4
    shelf_height_cm: float = 26.0
    perturb_rate: float = 0.75
    start_date: dt.date = field(default_factory=lambda: dt.date(2026, 11, 2))
    jpeg_quality: tuple[int, int] = (72, 92)
    # Far more varied fixtures than the plain set (packs of 3-19 cm, shared colours, facings
    # packed edge to edge or spread, no outlines on half the photos): the bench's check that
    # counting and SKU identification do not lean on this renderer's habits. Its own random
    # stream: a plain set of a seed renders as it always did.
    variety: bool = False


@dataclass
class _Facing:
    sku: str
    shelf: int
    position: int
    x1: float
    x2: float


def _perturb(
    rng: np.random.Generator,
    layout: dict[int, list[PlanogramPosition]],
    catalog_skus: list[str],
    used_skus: set[str],
    rate: float,
) -> tuple[dict[int, list[tuple[PlanogramPosition, int, str | None]]], list[dict], list[dict]]:
    """Decide per shelf what is actually on it: (planned position, facings drawn, extra sku).

    At most one perturbation per shelf so the expected findings are unambiguous.
    """
    actual: dict[int, list[tuple[PlanogramPosition, int, str | None]]] = {
        s: [(p, p.facings, None) for p in rows] for s, rows in layout.items()
    }
    perturbations: list[dict] = []
    findings: list[dict] = []
    extras = [s for s in catalog_skus if s not in used_skus]
    for shelf, rows in layout.items():
        if rng.random() > rate / len(layout) * 1.5:
            continue
        kind = str(rng.choice(["removed", "reduced", "swapped", "extra"]))
        multi = [i for i, p in enumerate(rows) if p.facings >= 2]
        if kind in ("reduced", "extra") and not multi:
            kind = "removed"
        if kind == "swapped" and len(rows) < 2:
            kind = "removed"
        if kind == "extra" and not extras:
            kind = "reduced"
        if kind == "removed":
            i = int(rng.integers(len(rows)))
            p = rows[i]
            actual[shelf][i] = (p, 0, None)
            findings.append(
                {
                    "type": "missing",
                    "shelf": shelf,
                    "position": p.position,
                    "expected_sku": p.sku,
                    "observed_sku": None,
                }
            )
        elif kind == "reduced":
            i = int(rng.choice(multi))
            p = rows[i]
            actual[shelf][i] = (p, p.facings - 1, None)
            findings.append(
                {
                    "type": "facings_short",
                    "shelf": shelf,
                    "position": p.position,
                    "expected_sku": p.sku,
                    "observed_sku": p.sku,
                }
            )
        elif kind == "extra":
            i = int(rng.choice(multi))
            p = rows[i]
            extra = str(rng.choice(extras))
            actual[shelf][i] = (p, p.facings - 1, extra)
            findings.append(
                {
                    "type": "facings_short",
                    "shelf": shelf,
                    "position": p.position,
                    "expected_sku": p.sku,
                    "observed_sku": p.sku,
                }
            )
            findings.append(
                {
                    "type": "extra",
                    "shelf": shelf,
                    "position": p.position,
                    "expected_sku": None,
                    "observed_sku": extra,
                }
            )
        else:
            i = int(rng.integers(len(rows) - 1))
            a, b = actual[shelf][i], actual[shelf][i + 1]
            actual[shelf][i], actual[shelf][i + 1] = b, a
            for p, other in ((rows[i], rows[i + 1]), (rows[i + 1], rows[i])):
                findings.append(
                    {
                        "type": "misplaced",
                        "shelf": shelf,
                        "position": p.position,
                        "expected_sku": p.sku,
                        "observed_sku": other.sku,
                    }
                )
        perturbations.append({"type": kind, "shelf": shelf})
    return actual, perturbations, findings


def _random_homography(rng: np.random.Generator, w: int, h: int, strength: float) -> np.ndarray:
    """Slight perspective plus rotation, as from a hand-held phone."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-strength, strength, (4, 2)).astype(np.float32) * np.float32([w, h])
    persp = cv2.getPerspectiveTransform(src, src + jitter)
    angle = float(rng.uniform(-2.5, 2.5))
    rot = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), [0, 0, 1]])
    return rot @ persp


def _warp_box(
    hmat: np.ndarray, box: tuple[float, float, float, float], w: int, h: int
) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    pts = cv2.perspectiveTransform(np.float32([[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]]), hmat)[0]
    return (
        int(max(0, pts[:, 0].min())),
        int(max(0, pts[:, 1].min())),
        int(min(w, pts[:, 0].max())),
        int(min(h, pts[:, 1].max())),
    )


def render_photo(
    rng: np.random.Generator,
    layout: dict[int, list[PlanogramPosition]],
    catalog: dict[str, CatalogItem],
    looks: dict[str, ProductLook],
    cfg: SynthConfig,
    rate: float,
    variety: np.random.Generator | None = None,
) -> tuple[np.ndarray, dict, list[dict]]:
    """One photo of a fixture: returns (BGR image, truth record, COCO-style instances).
    ``variety``: the random stream of ``SynthConfig.variety`` (packed or spread facings)."""
    margin_x = int(cfg.width_px * 0.03)
    ppc = (cfg.width_px - 2 * margin_x) / cfg.fixture_width_cm
    level_h = int(round(cfg.shelf_height_cm * ppc))
    edge_h = max(14, int(round(2.8 * ppc)))
    top = int(0.04 * cfg.width_px)
    height = top + cfg.shelves * level_h + int(0.05 * cfg.width_px)
    width = cfg.width_px
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:] = (150, 160, 165)
    ids = np.zeros((height, width), dtype=np.int32)
    back = BACK_COLORS[int(rng.integers(len(BACK_COLORS)))]
    edge_color = EDGE_COLORS[int(rng.integers(len(EDGE_COLORS)))]
    # Side panels of the fixture.
    canvas[:, :margin_x] = (120, 125, 130)
    canvas[:, width - margin_x :] = (120, 125, 130)
    used = {p.sku for rows in layout.values() for p in rows}
    actual, perturbations, findings = _perturb(rng, layout, sorted(catalog), used, rate)

    shelves_truth: list[dict] = []
    gaps_plain: list[dict] = []
    facings: list[_Facing] = []
    for shelf in range(1, cfg.shelves + 1):
        y_top = top + (shelf - 1) * level_h
        y_edge = y_top + level_h - edge_h
        draw_back_panel(canvas, margin_x, y_top, width - margin_x, y_edge, back, rng)
        # Spread the planogram's leftover width between facings, as staff face products up,
        # so the only empty space on a shelf is a real gap.
        planned = actual.get(shelf, [])
        n_facings = sum(p.facings for p, _, _ in planned)
        total = sum(p.facings * float(catalog[p.sku].width_cm or 8) for p, _, _ in planned) * ppc
        usable = (cfg.fixture_width_cm - 0.8) * ppc
        spacing = max(0.5 * ppc, (usable - total) / max(1, n_facings))
        block_gap = 0.0  # extra space between SKU blocks (packed shelves)
        if variety is not None and variety.random() < 0.6:
            # Packed: one SKU's facings touch (0-0.3 cm apart), the rest of the width goes
            # between SKU blocks (staff face up to the shelf's end: empty width is a gap).
            tight = float(variety.uniform(0.0, 0.3)) * ppc
            block_gap = max(0.0, usable - total - tight * n_facings) / max(1, len(planned))
            spacing = tight
        x = margin_x + 0.4 * ppc + spacing / 2
        skus_seq: list[str | None] = []
        tags: list[tuple[int, str]] = []
        for planned, drawn, extra in actual.get(shelf, []):
            item = catalog[planned.sku]
            fw = float(item.width_cm or 8) * ppc
            x += block_gap / 2
            tags.append((int(x + 2), f"{rng.uniform(0.5, 9.9):.2f}"))
            for k in range(planned.facings):
                if k < drawn:
                    facings.append(_Facing(planned.sku, shelf, planned.position, x, x + fw))
                    skus_seq.append(planned.sku)
                    x += fw + spacing
                elif extra is not None and k == drawn:
                    ew = float(catalog[extra].width_cm or 8) * ppc
                    ew = min(ew, fw)
                    ex = x + (fw - ew) / 2
                    facings.append(_Facing(extra, shelf, planned.position, ex, ex + ew))
                    skus_seq.append(extra)
                    x += fw + spacing
                else:
                    gaps_plain.append(
                        {
                            "shelf": shelf,
                            "x1": x,
                            "x2": x + fw,
                            "facings": 1,
                            "width_cm": float(item.width_cm or 8) + 0.8,
                        }
                    )
                    skus_seq.append(None)
                    x += fw + spacing
            x += block_gap / 2
        draw_shelf_edge(
            canvas, margin_x, width - margin_x, y_edge, y_edge + edge_h, edge_color, tags
        )
        shelves_truth.append(
            {"index": shelf, "y1": y_top, "y2": y_edge + edge_h, "edge_y": y_edge, "skus": skus_seq}
        )
    # Merge adjacent empty facings into one gap each.
    merged: list[dict] = []
    for g in gaps_plain:
        if merged and merged[-1]["shelf"] == g["shelf"] and g["x1"] - merged[-1]["x2"] < ppc * 1.5:
            merged[-1]["x2"] = g["x2"]
            merged[-1]["facings"] += 1
            merged[-1]["width_cm"] += g["width_cm"]
        else:
            merged.append(dict(g))

    instance_skus: list[str] = []
    outline = variety is None or variety.random() < 0.5
    for n, f in enumerate(facings, start=1):
        item = catalog[f.sku]
        shelf_row = shelves_truth[f.shelf - 1]
        y2 = shelf_row["edge_y"]
        ph = float(item.height_cm or 15) * ppc
        box = (int(f.x1), int(y2 - ph), int(f.x2), int(y2))
        draw_product(canvas, ids, looks[f.sku], box, n, rng, outline)
        instance_skus.append(f.sku)

    # Photometric and geometric perturbations, applied to the ground truth alike.
    hmat = _random_homography(rng, width, height, 0.012)
    canvas = cv2.warpPerspective(
        canvas, hmat, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    ids = cv2.warpPerspective(
        ids.astype(np.float32), hmat, (width, height), flags=cv2.INTER_NEAREST, borderValue=0
    ).astype(np.int32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    light = 1.0 - rng.uniform(0.1, 0.3) * np.hypot(xx - cx, yy - cy) / np.hypot(width, height)
    light *= rng.uniform(0.85, 1.1)
    img = canvas.astype(np.float32) * light[..., None]
    img += rng.normal(0, rng.uniform(2, 6), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    sigma = float(rng.uniform(0.3, 1.1))
    img = cv2.GaussianBlur(img, (0, 0), sigma)

    instances = []
    for n, sku in enumerate(instance_skus, start=1):
        m = ids == n
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        instances.append(
            {
                "sku": sku,
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                "segmentation": encode_rle(m),
                "area": int(m.sum()),
                "shelf": facings[n - 1].shelf,
            }
        )
    gaps = []
    for g in merged:
        row = shelves_truth[g["shelf"] - 1]
        box = _warp_box(hmat, (g["x1"], row["y1"], g["x2"], row["edge_y"]), width, height)
        gaps.append(
            {
                "shelf": g["shelf"],
                "bbox": list(box),
                "width_cm": round(g["width_cm"], 1),
                "missing_facings": g["facings"],
            }
        )
    for row in shelves_truth:
        mid = width / 2
        top_pt = cv2.perspectiveTransform(np.float32([[[mid, row["y1"]]]]), hmat)[0, 0]
        bot_pt = cv2.perspectiveTransform(np.float32([[[mid, row["y2"]]]]), hmat)[0, 0]
        edge_pt = cv2.perspectiveTransform(np.float32([[[mid, row["edge_y"]]]]), hmat)[0, 0]
        row["y1"], row["y2"], row["edge_y"] = int(top_pt[1]), int(bot_pt[1]), int(edge_pt[1])
    truth = {
        "shelves": shelves_truth,
        "gaps": gaps,
        "perturbations": perturbations,
        "expected_findings": findings,
        "px_per_cm": round(ppc, 3),
    }
    return img, truth, instances


def render_reference(look: ProductLook, item: CatalogItem, rng: np.random.Generator) -> np.ndarray:
    """A packshot of one product on a plain background, as a catalog would hold."""
    ppc = 10.0
    w, h = int((item.width_cm or 8) * ppc), int((item.height_cm or 15) * ppc)
    canvas = np.full((h + 20, w + 20, 3), 245, dtype=np.uint8)
    draw_product(canvas, None, look, (10, 10, 10 + w, 10 + h), 1, rng)
    return canvas


def render_dataset(out: Path, cfg: SynthConfig, progress: bool = True) -> dict:
    """Render ``cfg.photos`` photos plus catalog, planograms, references and ground truth."""
    rng = np.random.default_rng(cfg.seed)
    variety = np.random.default_rng([cfg.seed, 17]) if cfg.variety else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    (out / "refs").mkdir(exist_ok=True)
    items, looks = make_catalog(rng, cfg.skus, variety)
    catalog = {c.sku: c for c in items}
    for item in items:
        cv2.imwrite(
            str(out / "refs" / f"{item.sku}.png"), render_reference(looks[item.sku], item, rng)
        )
    write_csv(out / "catalog.csv", items)
    # The chain's planogram for each fixture is scoped per store so stores can differ.
    plan_rows: list[PlanogramPosition] = []
    layouts: dict[tuple[str, str], dict[int, list[PlanogramPosition]]] = {}
    for store in cfg.stores:
        for fixture in cfg.fixtures:
            rows = make_planogram(
                rng,
                items,
                f"{store}-{fixture}",
                fixture,
                store,
                cfg.fixture_width_cm,
                cfg.shelves,
                cfg.shelf_height_cm,
            )
            plan_rows.extend(rows)
            layouts[(store, fixture)] = expected_layout(rows)
    write_csv(
        out / "planogram.csv",
        plan_rows,
        ["planogram", "fixture", "shelf", "position", "sku", "facings", "store"],
    )

    coco: dict = {
        "info": {"description": "ShelfWatch synthetic shelves", "seed": cfg.seed},
        "images": [],
        "annotations": [],
        "categories": [
            {"id": i + 1, "name": c.sku, "supercategory": "product"} for i, c in enumerate(items)
        ],
    }
    cat_ids = {c["name"]: c["id"] for c in coco["categories"]}
    truth_all: dict[str, dict] = {}
    combos = [(s, f) for s in cfg.stores for f in cfg.fixtures]
    for n in tqdm(range(cfg.photos), desc="rendering", unit="photo", disable=not progress):
        store, fixture = combos[n % len(combos)]
        day = cfg.start_date + dt.timedelta(days=n // len(combos))
        captured = dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=int(n * 7 % 300))
        img, truth, instances = render_photo(
            rng, layouts[(store, fixture)], catalog, looks, cfg, cfg.perturb_rate, variety
        )
        name = f"{store}_{fixture}_{day.isoformat()}_{n:04d}.jpg"
        quality = int(rng.integers(*cfg.jpeg_quality))
        cv2.imwrite(str(out / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image_id = n + 1
        coco["images"].append(
            {"id": image_id, "file_name": name, "width": img.shape[1], "height": img.shape[0]}
        )
        for inst in instances:
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": cat_ids[inst["sku"]],
                    "bbox": [
                        inst["bbox"][0],
                        inst["bbox"][1],
                        inst["bbox"][2] - inst["bbox"][0],
                        inst["bbox"][3] - inst["bbox"][1],
                    ],
                    "area": inst["area"],
                    "segmentation": inst["segmentation"],
                    "iscrowd": 0,
                    "shelf": inst["shelf"],
                }
            )
        truth_all[name] = {
            "store": store,
            "fixture": fixture,
            "planogram": f"{store}-{fixture}",
            "captured_at": captured.isoformat(),
            **truth,
        }
    with (out / "photos.csv").open("w", encoding="utf-8") as fh:
        fh.write("file,store,fixture,captured_at\n")
        for name, t in truth_all.items():
            fh.write(f"images/{name},{t['store']},{t['fixture']},{t['captured_at']}\n")
    (out / "annotations.json").write_text(json.dumps(coco))
    (out / "truth.json").write_text(json.dumps(truth_all, indent=1))
    return truth_all
