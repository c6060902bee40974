"""Catalog and planogram files: every problem reported with file:line and a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwatch.core.errors import BadInputError
from shelfwatch.planogram.formats import ValidationError, read_catalog, read_planogram

HEADER = "sku,name,brand,category,width_cm,height_cm,prompt,reference_image\n"


def test_catalog_reports_each_problem_with_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        HEADER + "A,Apple juice,Sunny,drinks,7,20,,\n"
        "A,Again,Sunny,drinks,7,20,,\n"
        "B,Box,Fjord,cereal,-3,abc,,\n"
        "C,Can,Fjord,canned,7,12,,missing.png\n"
    )
    with pytest.raises(ValidationError) as err:
        read_catalog(path)
    problems = err.value.problems
    assert any(f"{path}:3" in p and "duplicate sku" in p for p in problems)
    assert any(f"{path}:4" in p and "width_cm must be positive" in p for p in problems)
    assert any(f"{path}:4" in p and "height_cm is not a number" in p for p in problems)
    assert any(f"{path}:5" in p and "reference_image" in p for p in problems)


def test_catalog_missing_column_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("sku,name\nA,x\n")
    with pytest.raises(BadInputError, match="missing column"):
        read_catalog(path)
    path.write_bytes(HEADER.encode() + "A,caf\xe9,b,c,1,2,,\n".encode("latin-1"))
    with pytest.raises(BadInputError, match="bad encoding"):
        read_catalog(path)


def test_planogram_validation(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "planogram,fixture,shelf,position,sku,facings\n"
        "P,F1,1,1,A,2\nP,F1,1,1,B,1\nP,F1,1,2,Z,1\nP,F1,2,1,A,0\n"
    )
    with pytest.raises(ValidationError) as err:
        read_planogram(path, {"A", "B"})
    text = "\n".join(err.value.problems)
    assert f"{path}:3: duplicate shelf 1 position 1" in text
    assert f"{path}:4: unknown SKU 'Z'" in text
    assert f"{path}:5: facings must be positive" in text


def test_planogram_json_equivalent_to_csv(tmp_path: Path) -> None:
    rows = [
        {"planogram": "P", "fixture": "F1", "shelf": 1, "position": 1, "sku": "A", "facings": 3}
    ]
    (tmp_path / "p.json").write_text(json.dumps(rows))
    (tmp_path / "p.csv").write_text("planogram,fixture,shelf,position,sku,facings\nP,F1,1,1,A,3\n")
    assert read_planogram(tmp_path / "p.json") == read_planogram(tmp_path / "p.csv")
