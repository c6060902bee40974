"""Random but plausible catalogs and planograms for rendered fixtures."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition

BRANDS = ["Sunny", "Fjord", "Nordic", "Aurora", "Pampa", "Kora", "Vela", "Tundra"]
CATEGORIES = {
    "box": ("cereal", 5.0, 9.0, 14.0, 24.0),
    "bottle": ("drinks", 6.0, 8.0, 18.0, 26.0),
    "can": ("canned", 6.5, 8.0, 10.0, 13.0),
    "pouch": ("snacks", 8.0, 12.0, 14.0, 20.0),
}
WORDS = ["Crisp", "Fresh", "Gold", "Max", "Pure", "Zest", "Bio", "Choco", "Lite", "Classic"]


@dataclass(frozen=True)
class ProductLook:
    """How a catalog product is drawn."""

    sku: str
    shape: str
    color: tuple[int, int, int]
    accent: tuple[int, int, int]
    text: str


def _distinct_colors(rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    hues = (np.linspace(0, 180, n, endpoint=False) + rng.uniform(0, 180 / n)) % 180
    rng.shuffle(hues)
    colors = []
    for h in hues:
        s = rng.uniform(140, 250)
        v = rng.uniform(140, 245)
        hsv = np.uint8([[[h, s, v]]])
        b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
        colors.append((int(b), int(g), int(r)))
    return colors


def make_catalog(
    rng: np.random.Generator, n_skus: int, variety: np.random.Generator | None = None
) -> tuple[list[CatalogItem], dict[str, ProductLook]]:
    """``n_skus`` products with distinct colours, sizes by shape, brands and names.

    With ``variety`` (its own random stream, so plain catalogs stay as they were) sizes
    reach far outside each shape's usual range (3 cm spice jars to 19 cm multipacks) and
    a third of the products share a colour with another one, told apart only by their
    label band and text, as variants of one brand are."""
    shapes = list(CATEGORIES)
    colors = _distinct_colors(rng, n_skus)
    if variety is not None:
        for i in range(n_skus):
            if variety.random() < 1 / 3:
                j = int(variety.integers(n_skus))
                jitter = variety.integers(-12, 13, 3)
                colors[i] = tuple(
                    int(np.clip(c + d, 0, 255)) for c, d in zip(colors[j], jitter, strict=True)
                )  # type: ignore[assignment]
    items: list[CatalogItem] = []
    looks: dict[str, ProductLook] = {}
    for i in range(n_skus):
        shape = shapes[i % len(shapes)]
        category, wmin, wmax, hmin, hmax = CATEGORIES[shape]
        brand = BRANDS[int(rng.integers(len(BRANDS)))]
        word = WORDS[int(rng.integers(len(WORDS)))]
        sku = f"SKU{i + 1:03d}"
        color = colors[i]
        accent = tuple(int(v) for v in rng.integers(0, 256, 3))
        name = f"{brand} {word} {category.title()}"
        if variety is not None:
            wmin, wmax = wmin * 0.6, wmax * 1.6
        items.append(
            CatalogItem(
                sku=sku,
                name=name,
                brand=brand,
                category=category,
                width_cm=round(float(rng.uniform(wmin, wmax)), 1),
                height_cm=round(float(rng.uniform(hmin, hmax)), 1),
                prompt=f"{_color_name(color)} {shape}",
                reference_image=f"refs/{sku}.png",
            )
        )
        looks[sku] = ProductLook(sku, shape, color, accent, brand.upper()[:6])  # type: ignore[arg-type]
    return items, looks


def _color_name(bgr: tuple[int, int, int]) -> str:
    h = int(cv2.cvtColor(np.uint8([[bgr]]), cv2.COLOR_BGR2HSV)[0, 0, 0])
    names = [
        (10, "red"),
        (22, "orange"),
        (34, "yellow"),
        (78, "green"),
        (100, "cyan"),
        (130, "blue"),
        (160, "purple"),
        (180, "red"),
    ]
    return next(name for limit, name in names if h < limit)


def make_planogram(
    rng: np.random.Generator,
    catalog: list[CatalogItem],
    planogram: str,
    fixture: str,
    store: str | None,
    width_cm: float,
    shelves: int,
    shelf_height_cm: float,
) -> list[PlanogramPosition]:
    """Fill each shelf left to right with SKU blocks that fit its width and height."""
    rows: list[PlanogramPosition] = []
    for shelf in range(1, shelves + 1):
        fits = [c for c in catalog if c.height_cm and c.height_cm < shelf_height_cm - 2]
        used = 0.0
        position = 1
        order = rng.permutation(len(fits))
        for k in order:
            item = fits[int(k)]
            width = float(item.width_cm or 8.0) + 0.8
            max_facings = int((width_cm - used) // width)
            if max_facings < 1:
                continue
            facings = int(min(max_facings, rng.integers(2, 5)))
            rows.append(
                PlanogramPosition(planogram, fixture, shelf, position, item.sku, facings, store)
            )
            used += facings * width
            position += 1
            if width_cm - used < 6:
                break
    return rows
