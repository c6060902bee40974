"""The default backend on the real photos in ../shared (skipped where that folder is absent).

Accuracy guards, not timings: the issue's targets for real photos, measured the way
``shelfwatch bench accuracy`` measures them, on both halves of each set.
"""

from __future__ import annotations

from pathlib import Path

from shelfwatch.bench import accuracy
from shelfwatch.vision.registry import get_segmenter


def test_real_shelves_found_in_both_halves(shared_dir: Path) -> None:
    rows = accuracy.score_real_shelves(shared_dir / "real-shelves", get_segmenter("opencv"))
    half = len(rows) // 2
    for part in (rows[:half], rows[half:]):
        summary = accuracy.summarise_shelves(part, "part")
        assert summary["failed_photos"] == 0
        assert summary["shelf_recall"] >= 0.90, summary
        # Recall alone rewards many bands: most shelves reported in the annotated
        # columns must be annotated ones (a lower bound: side bays of aisles count as wrong).
        assert summary["shelf_precision"] >= 0.65, summary


def test_real_products_per_camera(shared_dir: Path) -> None:
    rows = accuracy.score_real_products(shared_dir / "real-products", get_segmenter("opencv"))
    for cameras in (("C1", "C2"), ("C3", "C4")):
        summary = accuracy.summarise_products([r for r in rows if r["camera"] in cameras], "part")
        assert summary["precision"] >= 0.95 and summary["recall"] >= 0.95, summary
        assert summary["count_mape"] <= 5, summary
