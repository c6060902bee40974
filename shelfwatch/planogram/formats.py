"""Catalog and planogram files (CSV or JSON), validated with file:line reasons.

Catalog CSV: ``sku,name,brand,category,width_cm,height_cm,prompt,reference_image``
(prompt and reference_image optional; reference_image relative to the file's folder).
Planogram CSV: ``planogram,fixture,shelf,position,sku,facings`` with shelf 1 = top and
position 1 = leftmost; an optional ``store`` column scopes a planogram to one store.
The JSON form is a list of objects with the same keys.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.core.imageio import load_image

CATALOG_COLUMNS = [
    "sku",
    "name",
    "brand",
    "category",
    "width_cm",
    "height_cm",
    "prompt",
    "reference_image",
]
CATALOG_REQUIRED = ["sku", "name", "brand", "category", "width_cm", "height_cm"]
PLANOGRAM_COLUMNS = ["planogram", "fixture", "shelf", "position", "sku", "facings"]


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    name: str
    brand: str
    category: str
    width_cm: float | None
    height_cm: float | None
    prompt: str | None = None
    reference_image: str | None = None


@dataclass(frozen=True)
class PlanogramPosition:
    planogram: str
    fixture: str
    shelf: int
    position: int
    sku: str
    facings: int
    store: str | None = None


class ValidationError(ShelfWatchError):
    """All problems found in one file, each as ``file:line: reason``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "; ".join(problems[:10])
            + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else "")
        )
        self.problems = problems


def _read_rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows with their 1-based line numbers; header and encoding problems raise at once."""
    if not path.exists():
        raise BadInputError(str(path), "no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            str(path), f"bad encoding (expected UTF-8): {exc.reason} at byte {exc.start}"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(
                str(path), f"invalid JSON at line {exc.lineno}: {exc.msg}"
            ) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadInputError(str(path), "JSON must be a list of objects")
        # Every object needs every required field (a CSV row has all its columns).
        problems = [
            f"{path}:{i + 1}: missing field(s): {', '.join(missing)}"
            for i, r in enumerate(data)
            if (missing := [c for c in required if c not in r])
        ]
        if problems:
            raise ValidationError(problems)
        return [
            (i + 1, {k: "" if v is None else str(v) for k, v in r.items()})
            for i, r in enumerate(data)
        ]
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise BadInputError(f"{path}:1", f"missing column(s): {', '.join(missing)}")
    rows = []
    for row in reader:
        if None in row:
            raise BadInputError(f"{path}:{reader.line_num}", "more values than columns")
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return rows


def _number(value: str, kind: type, where: str, name: str, problems: list[str]) -> float | None:
    if value == "":
        return None
    try:
        number = kind(value)
    except ValueError:
        problems.append(
            f"{where}: {name} is not a {'whole ' if kind is int else ''}number: {value!r}"
        )
        return None
    if not math.isfinite(number):
        problems.append(f"{where}: {name} must be a finite number, got {value!r}")
        return None
    return number


def read_catalog(path: str | Path) -> list[CatalogItem]:
    """Parse and validate a catalog; raises ``ValidationError`` listing every problem."""
    path = Path(path)
    problems: list[str] = []
    items: list[CatalogItem] = []
    seen: dict[str, int] = {}
    for line, row in _read_rows(path, CATALOG_REQUIRED):
        where = f"{path}:{line}"
        sku = row.get("sku", "")
        if not sku:
            problems.append(f"{where}: empty sku")
            continue
        if sku in seen:
            problems.append(f"{where}: duplicate sku {sku!r} (first on line {seen[sku]})")
            continue
        seen[sku] = line
        width = _number(row.get("width_cm", ""), float, where, "width_cm", problems)
        height = _number(row.get("height_cm", ""), float, where, "height_cm", problems)
        for name, value in (("width_cm", width), ("height_cm", height)):
            if value is not None and value <= 0:
                problems.append(f"{where}: {name} must be positive, got {value}")
        ref = row.get("reference_image") or None
        if ref and not (path.parent / ref).exists():
            problems.append(f"{where}: reference_image {ref!r} not found next to the catalog")
        elif ref:
            try:
                load_image(path.parent / ref)
            except BadInputError as exc:
                problems.append(f"{where}: reference_image {ref!r}: {exc.reason}")
        items.append(
            CatalogItem(
                sku,
                row.get("name", ""),
                row.get("brand", ""),
                row.get("category", ""),
                width,
                height,
                row.get("prompt") or None,
                ref,
            )
        )
    if problems:
        raise ValidationError(problems)
    return items


def read_planogram(
    path: str | Path, known_skus: Iterable[str] | None = None
) -> list[PlanogramPosition]:
    """Parse and validate planogram rows (unknown SKUs checked when ``known_skus`` is given)."""
    path = Path(path)
    known = set(known_skus) if known_skus is not None else None
    problems: list[str] = []
    out: list[PlanogramPosition] = []
    seen: dict[tuple[str, str, str | None, int, int], int] = {}
    for line, row in _read_rows(path, PLANOGRAM_COLUMNS):
        where = f"{path}:{line}"
        shelf = _number(row["shelf"], int, where, "shelf", problems)
        position = _number(row["position"], int, where, "position", problems)
        facings = _number(row["facings"], int, where, "facings", problems)
        if not row["planogram"] or not row["fixture"] or not row["sku"]:
            problems.append(f"{where}: planogram, fixture and sku must not be empty")
            continue
        if shelf is None or position is None or facings is None:
            if row["shelf"] == "" or row["position"] == "" or row["facings"] == "":
                problems.append(f"{where}: shelf, position and facings are required")
            continue
        if shelf < 1 or position < 1:
            problems.append(f"{where}: shelf and position start at 1")
        if facings < 1:
            problems.append(f"{where}: facings must be positive, got {int(facings)}")
        if known is not None and row["sku"] not in known:
            problems.append(f"{where}: unknown SKU {row['sku']!r} (not in the catalog)")
        store = row.get("store") or None
        key = (row["planogram"], row["fixture"], store, int(shelf), int(position))
        if key in seen:
            problems.append(
                f"{where}: duplicate shelf {int(shelf)} position {int(position)} "
                f"(first on line {seen[key]})"
            )
        seen[key] = line
        out.append(
            PlanogramPosition(
                row["planogram"],
                row["fixture"],
                int(shelf),
                int(position),
                row["sku"],
                int(facings),
                store,
            )
        )
    if problems:
        raise ValidationError(problems)
    return out


def write_csv(path: Path, rows: list, columns: list[str] | None = None) -> None:
    """Write dataclass rows as CSV (columns default to the dataclass fields)."""
    if columns is None:
        columns = [f.name for f in fields(rows[0])] if rows else []
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})


def expected_layout(rows: list[PlanogramPosition]) -> dict[int, list[PlanogramPosition]]:
    """Positions grouped by shelf, ordered left to right."""
    layout: dict[int, list[PlanogramPosition]] = {}
    for row in sorted(rows, key=lambda r: (r.shelf, r.position)):
        layout.setdefault(row.shelf, []).append(row)
    return layout


def skus_by_shelf(rows: list[PlanogramPosition]) -> dict[int, set[str]]:
    """The SKUs a planogram puts on each shelf."""
    out: dict[int, set[str]] = {}
    for r in rows:
        out.setdefault(r.shelf, set()).add(r.sku)
    return out
