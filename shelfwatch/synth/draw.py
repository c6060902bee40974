"""Drawing products and fixtures with OpenCV. Every product also paints its instance id."""

from __future__ import annotations

import cv2
import numpy as np

from shelfwatch.synth.catalog import ProductLook


def _shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in color)  # type: ignore[return-value]


def product_outline(shape: str, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """Silhouette polygon of a product standing in box (x1, y1, x2, y2)."""
    w, h = x2 - x1, y2 - y1
    if shape == "bottle":
        neck = 0.32 * w
        cx = (x1 + x2) / 2
        pts = [
            (cx - neck / 2, y1),
            (cx + neck / 2, y1),
            (cx + neck / 2, y1 + 0.18 * h),
            (x2, y1 + 0.36 * h),
            (x2, y2),
            (x1, y2),
            (x1, y1 + 0.36 * h),
            (cx - neck / 2, y1 + 0.18 * h),
        ]
    elif shape == "can":
        r = max(2.0, 0.06 * h)
        pts = [
            (x1 + r, y1),
            (x2 - r, y1),
            (x2, y1 + r),
            (x2, y2 - r),
            (x2 - r, y2),
            (x1 + r, y2),
            (x1, y2 - r),
            (x1, y1 + r),
        ]
    elif shape == "pouch":
        inset = 0.08 * w
        pts = [
            (x1 + inset, y1),
            (x2 - inset, y1),
            (x2, y1 + 0.25 * h),
            (x2, y2),
            (x1, y2),
            (x1, y1 + 0.25 * h),
        ]
    else:
        pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return np.round(np.array(pts)).astype(np.int32)


def draw_product(
    canvas: np.ndarray,
    ids: np.ndarray | None,
    look: ProductLook,
    box: tuple[int, int, int, int],
    instance_id: int,
    rng: np.random.Generator,
    outline: bool = True,
) -> None:
    """Paint one facing: silhouette, cylinder or flat shading, label band, brand text; a
    darker outline unless ``outline`` is off (neighbours of one SKU then meet seamlessly)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    poly = product_outline(look.shape, x1, y1, x2, y2)
    mask = np.zeros(canvas.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    region = mask[y1:y2, x1:x2].astype(bool)
    # Horizontal shading: round packs are darker at their sides.
    xs = np.linspace(-1, 1, w)
    if look.shape in ("bottle", "can"):
        profile = 0.62 + 0.42 * np.sqrt(np.clip(1 - xs**2, 0, 1))
    else:
        profile = 0.92 + 0.08 * (1 - np.abs(xs))
    base = np.array(look.color, dtype=np.float32)[None, None, :] * profile[None, :, None]
    patch = np.broadcast_to(base, (h, w, 3)).copy()
    # Label band with the accent colour and the brand text.
    band_y1 = int(h * (0.42 if look.shape == "bottle" else 0.30))
    band_y2 = int(h * (0.70 if look.shape == "bottle" else 0.58))
    patch[band_y1:band_y2] = np.array(look.accent, dtype=np.float32) * profile[None, :, None]
    patch = np.clip(patch, 0, 255).astype(np.uint8)
    text_color = (255, 255, 255) if sum(look.accent) < 380 else (20, 20, 20)
    scale = max(0.25, min(w / 90.0, (band_y2 - band_y1) / 40.0))
    (tw, th), _ = cv2.getTextSize(look.text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(
        patch,
        look.text,
        (max(1, (w - tw) // 2), (band_y1 + band_y2 + th) // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        text_color,
        1,
        cv2.LINE_AA,
    )
    if look.shape == "box":
        cv2.circle(patch, (w // 2, int(h * 0.78)), max(2, w // 6), _shade(look.accent, 0.7), -1)
    if look.shape == "bottle":
        cap_h = max(2, int(0.08 * h))
        patch[:cap_h] = _shade(look.accent, 0.8)
    canvas_view = canvas[y1:y2, x1:x2]
    canvas_view[region] = patch[region]
    if outline:
        cv2.polylines(canvas, [poly], True, _shade(look.color, 0.55), 1, cv2.LINE_AA)
    if ids is not None:
        ids[y1:y2, x1:x2][region] = instance_id


def draw_back_panel(
    canvas: np.ndarray,
    x1: int,
    y1: int,
    x2: int,
    y2: int,
    color: tuple[int, int, int],
    rng: np.random.Generator,
) -> None:
    """Fixture back: a dark panel with a faint vertical gradient and perforation dots."""
    h = y2 - y1
    grad = np.linspace(0.85, 1.1, h)[:, None, None]
    canvas[y1:y2, x1:x2] = np.clip(np.array(color)[None, None, :] * grad, 0, 255)
    step = int(rng.integers(18, 30))
    dot = _shade(color, 0.7)
    for yy in range(y1 + step // 2, y2, step):
        for xx in range(x1 + step // 2, x2, step):
            cv2.circle(canvas, (xx, yy), 1, dot, -1)


def draw_shelf_edge(
    canvas: np.ndarray,
    x1: int,
    x2: int,
    y1: int,
    y2: int,
    color: tuple[int, int, int],
    price_tags: list[tuple[int, str]],
) -> None:
    """Shelf edge strip with a highlight line on top and price labels."""
    canvas[y1:y2, x1:x2] = color
    canvas[y1 : y1 + 2, x1:x2] = _shade(color, 1.15)
    canvas[y2 - 2 : y2, x1:x2] = _shade(color, 0.6)
    th = y2 - y1
    for x, text in price_tags:
        tx1, ty1 = x, y1 + max(2, th // 6)
        tx2, ty2 = x + int(th * 1.8), y2 - max(2, th // 6)
        cv2.rectangle(canvas, (tx1, ty1), (tx2, ty2), (60, 220, 250), -1)
        cv2.putText(
            canvas,
            text,
            (tx1 + 2, ty2 - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            max(0.25, th / 60),
            (20, 20, 20),
            1,
            cv2.LINE_AA,
        )
