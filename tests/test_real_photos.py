"""The default backend on the real photos in ../shared (skipped where that folder is absent).

Accuracy guards, not timings, measured the way ``shelfwatch bench accuracy`` measures them,
on each part of each set; the parts the detector never trained nor was tuned on are the ones
that matter (see the README for the figures and the targets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shelfwatch.bench import accuracy
from shelfwatch.bench.accuracy import INPUT_HEIGHTS
from shelfwatch.core.imageio import load_image
from shelfwatch.labels.shared import held_out
from shelfwatch.vision.registry import get_segmenter

# Held-out supermarket labels: the least precision and recall and the most per-shelf count
# MAPE (%) the shipped weights may show (they have 0.59 / 0.58 / 27 %; README).
PRODUCTS_HELD_OUT = (0.5, 0.5, 32)


@pytest.fixture(scope="module")
def shelf_rows(shared_dir: Path) -> list[dict[str, Any]]:
    return accuracy.score_real_shelves(shared_dir / "real-shelves", get_segmenter("opencv"))


def test_real_shelves_found_in_both_halves(shelf_rows: list[dict[str, Any]]) -> None:
    half = len(shelf_rows) // 2
    for part in (shelf_rows[:half], shelf_rows[half:]):
        summary = accuracy.summarise_shelves(part, "part")
        assert summary["failed_photos"] == 0
        # The shelf-edge net trades recall for precision: 0.92 / 0.90 and 0.79 / 0.79 with
        # it, 0.97 / 0.95 and 0.71 / 0.67 with the classical edges alone.
        assert summary["shelf_recall"] >= 0.85, summary
        # Recall alone rewards many bands: most shelves reported in the annotated
        # columns must be annotated ones (a lower bound: side bays of aisles count as wrong).
        assert summary["shelf_precision"] >= 0.75, summary


def test_real_shelves_one_to_one(shelf_rows: list[dict[str, Any]]) -> None:
    """Each annotated shelf needs a band of its own; a shelf level is reported once per bay.
    (Before shelves were joined across slices and the supermarket detector: 0.76 / 0.60;
    before the shelf-edge net 0.82 / 0.69.)"""
    summary = accuracy.summarise_shelves(shelf_rows, "all")
    assert summary["shelf_recall_1to1"] >= 0.78, summary
    assert summary["shelf_precision_1to1"] >= 0.8, summary
    # The 0.90 holds where one bay was annotated (0.96); bays side by side are what
    # is left (0.76 on the 12 photos that show them, 0.65 before the upright net).
    assert summary["photos_side_by_side"] == 12, summary
    assert summary["shelf_recall_1to1_single_bay"] >= 0.9, summary


def test_bays_at_equal_heights_divided_at_their_upright(shared_dir: Path) -> None:
    """Two bays side by side whose rails run through the upright (train_2973) or whose
    upper shelves line up (train_2980): one bay each before the upright net (never trained
    on real-shelves); now a bay starts within 3 % of the width of the annotated boundary."""
    segmenter = get_segmenter("opencv")
    for name, boundary in (("train_2973.jpg", 592), ("train_2980.jpg", 468)):
        image = load_image(shared_dir / "real-shelves" / "images" / name)
        scene = segmenter.segment(image)
        starts = {s.x1 for s in scene.shelves if s.bay > 1}
        assert any(abs(x - boundary) <= 0.03 * image.shape[1] for x in starts), (name, starts)


def test_more_shelves_one_to_one_on_photos_never_trained_on(shared_dir: Path) -> None:
    """The 77 photos of real-shelves-more whose shelf boxes the shelf-edge net never saw
    (and whose products the detector never saw). The classical finder there: 0.78 / 0.70;
    the net trades a little recall for much precision (0.76 / 0.82)."""
    from shelfwatch.labels.shared import supermarket_products

    trained = {im.file_name for _, im in supermarket_products(shared_dir, "train")}
    rows = accuracy.score_real_shelves(shared_dir / "real-shelves-more", get_segmenter("opencv"))
    rows = [r for r in rows if r["image"] not in trained]
    summary = accuracy.summarise_shelves(rows, "held-out")
    assert summary["photos"] == 77 and summary["failed_photos"] == 0, summary
    assert summary["shelf_recall_1to1"] >= 0.7, summary
    assert summary["shelf_precision_1to1"] >= 0.78, summary


def test_real_products_per_camera(shared_dir: Path) -> None:
    """Racks of cigarette packs: the held-out cameras at the issue's no-regression target.
    The training cameras' close-ups show packs larger than the detector learned; read at
    640 px alone they counted 35 % off (the detector fired on packs' parts), the smaller
    pass reads them at the scale it learned."""
    rows = accuracy.score_real_products(shared_dir / "real-products", get_segmenter("opencv"))
    held = accuracy.summarise_products([r for r in rows if r["camera"] in ("C3", "C4")], "C3-C4")
    assert held["precision"] >= 0.95 and held["recall"] >= 0.95, held
    assert held["count_mape"] <= 3, held
    trained = accuracy.summarise_products([r for r in rows if r["camera"] in ("C1", "C2")], "C1-2")
    assert trained["precision"] >= 0.9 and trained["recall"] >= 0.95, trained
    assert trained["count_mape"] <= 5, trained


def test_supermarket_shelf_counts_on_photos_never_trained_or_tuned_on(shared_dir: Path) -> None:
    """A person's per-shelf counts (real-shelves/counts.csv): the detector never trained on
    these photos; its threshold was chosen on the first five."""
    rows = accuracy.score_real_counts(shared_dir / "real-shelves", get_segmenter("opencv"))
    names = sorted({r["image"] for r in rows})
    held = [r for r in rows if r["image"] in names[len(names) // 2 :]]
    summary = accuracy.summarise_counts(held, "held out")
    assert summary["shelves"] == 39
    assert summary["count_mape_shelf"] <= 25, summary  # 52 % before the supermarket labels


def test_supermarket_labels_split_into_training_and_held_out_photos(shared_dir: Path) -> None:
    """Our own product boxes: the first batch trains the detector, the second never did."""
    from shelfwatch.labels.shared import supermarket_products

    train = {im.file_name for _, im in supermarket_products(shared_dir, "train")}
    held = {im.file_name for _, im in supermarket_products(shared_dir, "held-out")}
    every = {im.file_name for _, im in supermarket_products(shared_dir, "all")}
    assert len(train) == 70 and len(held) == 77 and every == train | held
    assert not train & held


def test_supermarket_products_on_held_out_labels(shared_dir: Path) -> None:
    """Products on ordinary supermarket shelves, box by box: 77 photos of our own labels
    (6,636 boxes) the detector never trained on, precision and recall at IoU 0.5 and the
    per-shelf count error by the counting rule of real-shelves/counts.csv."""
    rows = accuracy.score_supermarket_products(shared_dir, get_segmenter("opencv"), "held-out")
    summary = accuracy.summarise_supermarket_products(rows, "held-out")
    assert summary["photos"] == 77 and summary["shelves"] >= 500, summary
    assert summary["precision"] >= PRODUCTS_HELD_OUT[0], summary
    assert summary["recall"] >= PRODUCTS_HELD_OUT[1], summary
    assert summary["count_mape_shelf"] <= PRODUCTS_HELD_OUT[2], summary
    # Each labeled product is stacked or alone, and of one height at the detector's input:
    # the kinds' recalls, weighted by their shares, give the recall.
    for kinds in (("stacked", "alone"), [f"input_height_{k}" for k, _, _ in INPUT_HEIGHTS]):
        shares = [summary[f"share_{k}"] for k in kinds]
        assert sum(shares) == pytest.approx(1, abs=1e-3), summary
        weighted = sum(summary[f"recall_{k}"] * summary[f"share_{k}"] for k in kinds)
        assert weighted == pytest.approx(summary["recall"], abs=2e-3), summary


def test_voids_on_the_held_out_part_of_real_gaps(shared_dir: Path) -> None:
    folder = shared_dir / "real-gaps"
    rows = accuracy.score_real_gaps(folder, get_segmenter("opencv"), part="held-out")
    assert rows and all(held_out(r["image"]) for r in rows)
    summary = accuracy.summarise_gaps(rows, "held-out")
    # Before the void head: 0.10 / 0.21; before the void-mask net 0.60 / 0.53.
    assert summary["void_recall"] >= 0.5, summary
    assert summary["gap_precision"] >= 0.55, summary


def test_more_shelf_photos_scored_through_the_bench(cli, shared_dir: Path, tmp_path: Path) -> None:
    """``bench accuracy --sets real-shelves-more``: the shelf finder on photos it was never
    tuned on, scored one to one (here three of them, linked into a small copy of the set)."""
    import csv
    import json

    from shelfwatch.cli import app
    from shelfwatch.labels.shared import supermarket_products

    source = shared_dir / "real-shelves-more"
    with (source / "shelves.csv").open() as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["image"] for r in rows})[:3]
    (tmp_path / "real-shelves-more" / "images").mkdir(parents=True)
    for name in names:
        (tmp_path / "real-shelves-more" / "images" / name).symlink_to(source / "images" / name)
    with (tmp_path / "real-shelves-more" / "shelves.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["image"] in names)
    result = cli.invoke(
        app,
        ["bench", "accuracy", "--sets", "real-shelves-more", "--shared", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    parts = {line["part"]: line for line in lines if "part" in line}
    assert sorted(parts) == ["all", "held-out", "train"]
    summary = parts["all"]
    assert summary["set"] == "real-shelves-more" and summary["photos"] == 3
    assert parts["held-out"]["photos"] + parts["train"]["photos"] == 3
    trained = {im.file_name for _, im in supermarket_products(shared_dir, "train")}
    assert parts["held-out"]["photos"] == sum(name not in trained for name in names)
    assert 0 < summary["shelf_recall_1to1"] <= 1 and summary["failed_photos"] == 0
    assert sorted(line["image"] for line in lines if "image" in line) == names
