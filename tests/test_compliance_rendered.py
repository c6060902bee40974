"""Compliance findings on 100 rendered photos with known perturbations (a held-out seed)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shelfwatch import pipeline
from shelfwatch.bench.accuracy import RenderedScore, score_rendered
from shelfwatch.cli import app
from shelfwatch.synth import SynthConfig, render_dataset
from shelfwatch.vision.registry import get_segmenter


@pytest.fixture(scope="module")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> RenderedScore:
    out = tmp_path_factory.mktemp("hundred")
    render_dataset(out, SynthConfig(photos=100, seed=9001), progress=False)
    return score_rendered(out, get_segmenter("opencv"))


def test_findings_from_ground_truth_are_exact(hundred: RenderedScore) -> None:
    assert hundred.findings_truth.n_true >= 100  # enough perturbations to mean something
    assert hundred.findings_truth.precision == 1.0
    assert hundred.findings_truth.recall == 1.0


def test_findings_with_default_backend(hundred: RenderedScore) -> None:
    assert hundred.findings.precision >= 0.95, hundred.findings
    assert hundred.findings.recall >= 0.95, hundred.findings


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> RenderedScore:
    out = tmp_path_factory.mktemp("varied")
    render_dataset(out, SynthConfig(photos=40, seed=9402, variety=True), progress=False)
    return score_rendered(out, get_segmenter("opencv"))


def test_findings_on_another_renderers_habits(varied: RenderedScore) -> None:
    """Varied renders (packed and spread facings, 3-19 cm packs, shared colours) of a seed
    looked at (the shelf-edge net's rule for lines on no edge strip and the confirmation of
    planned facings from unsure boxes and bare stretches were set on it): precision 0.948,
    recall 1.0 on these 40 (0.924 / 1.0 before bare stretches could confirm planned
    facings, 0.830 / 1.0 before unsure boxes could; 0.61 before the shelf-edge net; the
    code before the pack rules of realogram.py had 0.41)."""
    assert varied.findings.precision >= 0.93, varied.findings
    assert varied.findings.recall >= 0.95, varied.findings


def test_counts_on_another_renderers_habits(varied: RenderedScore) -> None:
    """The same 40 photos with their catalog: wide packs the detector boxed in pieces (a
    word, a picture) count once, so the count error is 0.38 % (1.71 % when every piece
    counted as a product; the issue's target is 2 %)."""
    mape = 100 * sum(varied.count_errors) / len(varied.count_errors)
    assert mape <= 1.0, mape


def test_unknown_fixture_and_missing_references_warn(
    cli: CliRunner, rendered: Path, tmp_path: Path
) -> None:
    image = sorted((rendered / "images").iterdir())[0]
    result = cli.invoke(
        app,
        [
            "check",
            str(image),
            "--planogram",
            str(rendered / "planogram.csv"),
            "--catalog",
            str(rendered / "catalog.csv"),
            "--fixture",
            "F99",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert any("'F99' is not in" in w for w in report["warnings"])
    assert report["findings"] and {f["type"] for f in report["findings"]} <= {
        "extra",
        "unknown_product",
        "misplaced",
    }

    catalog = (rendered / "catalog.csv").read_text().splitlines()
    stripped = [catalog[0]] + [",".join(line.split(",")[:-1] + [""]) for line in catalog[1:]]
    (tmp_path / "catalog.csv").write_text("\n".join(stripped) + "\n")
    truth = json.loads((rendered / "truth.json").read_text())
    fixture = truth[image.name]["fixture"]
    result = cli.invoke(
        app,
        [
            "check",
            str(image),
            "--planogram",
            str(rendered / "planogram.csv"),
            "--catalog",
            str(tmp_path / "catalog.csv"),
            "--fixture",
            fixture,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert any("no reference image for" in w for w in report["warnings"])


def test_bench_scores_varied_renders(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the bench renders
    result = cli.invoke(app, ["bench", "accuracy", "--sets", "varied", "--photos", "2", "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert line["set"] == "rendered-varied" and line["photos"] == 2
    assert 0 <= line["findings_precision"] <= 1 and line["findings_recall_truth"] == 1.0
    # Its own renders are gone after scoring (each run used to leave ~30 MB behind).
    assert line["data"] is None and list(tmp_path.iterdir()) == []


def test_runs_of_packs_located_by_their_packshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Varied renders of seed 7404 (wide packs that touch, whose print the detector boxes
    two packs and a half at a time): with each run's packs located by the catalog's
    packshot the count error and the false findings drop (on these 40: 1.03 -> 0.38 % and
    11 -> 8 false findings, 95 of 96 true ones found either way), and none is lost."""
    render_dataset(tmp_path, SynthConfig(photos=40, seed=7404, variety=True), progress=False)
    segmenter = get_segmenter("opencv")
    located = score_rendered(tmp_path, segmenter)
    monkeypatch.setattr(pipeline, "located_packs", lambda image, scene, catalog, sigs: scene)
    seen = score_rendered(tmp_path, segmenter)

    def mape(score: RenderedScore) -> float:
        return 100 * sum(score.count_errors) / len(score.count_errors)

    assert mape(located) < 0.75 * mape(seen), (mape(located), mape(seen))
    false = [s.findings.n_pred - s.findings.tp for s in (located, seen)]
    assert false[0] < false[1], false
    assert located.findings.tp >= seen.findings.tp
