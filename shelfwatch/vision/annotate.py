"""Overlays for people to look at: product masks, shelf lines, gaps, SKU labels.

Kept apart from detection logic, like supervision's annotators: pure functions of
(image, scene) -> image.
"""

from __future__ import annotations

import colorsys
import zlib

import cv2
import numpy as np

from shelfwatch.core.scene import PLANOGRAM, ShelfScene


def _color_for(key: str) -> tuple[int, int, int]:
    hue = (zlib.crc32(key.encode()) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_masks(image: np.ndarray, scene: ShelfScene, alpha: float = 0.45) -> np.ndarray:
    out = image.copy()
    products = scene.products
    for i in range(len(products)):
        x1, y1, x2, y2 = (int(v) for v in products.xyxy[i])
        if x2 <= x1 or y2 <= y1:
            continue
        color = np.array(_color_for(products.sku[i] or f"#{i}"), dtype=np.float32)
        region = out[y1:y2, x1:x2]
        m = (
            products.masks[i][: region.shape[0], : region.shape[1]]
            if products.masks
            else np.ones(region.shape[:2], bool)
        )
        region[m] = (region[m] * (1 - alpha) + color * alpha).astype(np.uint8)
        cv2.rectangle(out, (x1, y1), (x2, y2), tuple(int(c) for c in color), 1)
    return out


BAY_COLOURS = ((255, 200, 0), (0, 200, 255))  # alternate bays, so neighbours stand apart


def draw_shelves(image: np.ndarray, scene: ShelfScene) -> np.ndarray:
    """Each shelf as its box (its bay's columns, the products' tops down to the edge strip)
    and its edge line, labeled with bay and shelf."""
    out = image.copy()
    thickness = max(2, image.shape[1] // 500)
    for s in scene.shelves:
        colour = BAY_COLOURS[(s.bay - 1) % len(BAY_COLOURS)]
        y = s.edge_y if s.edge_y is not None else s.y2
        x1, x2 = (s.x1, s.x2) if s.x2 > s.x1 else (0, image.shape[1])
        cv2.rectangle(out, (x1, s.y1), (x2, s.y2), colour, 1)
        ends = s.edge or (x1, y, x2, y)
        cv2.line(out, ends[:2], ends[2:], colour, thickness)
        cv2.putText(
            out,
            f"bay {s.bay} shelf {s.index}",
            (x1 + 4, max(14, s.y1 + 16)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            colour,
            1,
            cv2.LINE_AA,
        )
    return out


def draw_gaps(image: np.ndarray, scene: ShelfScene) -> np.ndarray:
    out = image.copy()
    for g in scene.gaps:
        x1, y1, x2, y2 = g.bbox
        overlay = out.copy()
        cv2.rectangle(overlay, (x1, y1), (x2, y2), (0, 0, 255), -1)
        out = cv2.addWeighted(overlay, 0.3, out, 0.7, 0)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2)
        cv2.putText(
            out, "GAP", (x1 + 3, y2 - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA
        )
    return out


def label(scene: ShelfScene, i: int) -> str | None:
    """A product's label: its SKU, marked ``(plan)`` where the planogram confirmed it (no
    detector box stands for it), None where it is unknown."""
    sku = scene.products.sku[i]
    if not sku:
        return None
    return f"{sku} (plan)" if scene.products.source[i] == PLANOGRAM else sku


def draw_labels(image: np.ndarray, scene: ShelfScene) -> np.ndarray:
    out = image.copy()
    for i in range(len(scene.products)):
        sku = label(scene, i)
        if sku is None:
            continue
        x1, y1 = int(scene.products.xyxy[i][0]), int(scene.products.xyxy[i][1])
        cv2.putText(
            out, sku, (x1 + 2, y1 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA
        )
        cv2.putText(
            out,
            sku,
            (x1 + 2, y1 + 12),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out


def render_overlay(
    image: np.ndarray,
    scene: ShelfScene,
    masks: bool = True,
    shelves: bool = True,
    gaps: bool = True,
    labels: bool = True,
) -> np.ndarray:
    """All layers a person toggles in the dashboard, composed in a fixed order."""
    out = image
    if masks:
        out = draw_masks(out, scene)
    if gaps:
        out = draw_gaps(out, scene)
    if shelves:
        out = draw_shelves(out, scene)
    if labels:
        out = draw_labels(out, scene)
    return out
