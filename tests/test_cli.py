"""The CLI through its public surface: contracts, reference data, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shelfwatch.cli import app


def test_help_on_every_command(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "analyze",
        "check",
        "ingest",
        "worker",
        "status",
        "audit",
        "export",
        "synth",
        "demo",
        "dashboard",
        "db",
        "stores",
        "fixtures",
        "catalog",
        "planogram",
    ):
        assert command in result.output
        sub = cli.invoke(app, [command, "--help"])
        assert sub.exit_code == 0, (command, sub.output)


def test_analyze_json_schema(cli: CliRunner, rendered: Path, tmp_path: Path) -> None:
    images = sorted((rendered / "images").iterdir())[:2]
    result = cli.invoke(
        app, ["analyze", *map(str, images), "--json", "--overlay", str(tmp_path / "ov")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 2
    rec = lines[0]
    assert rec["image"] == str(images[0])
    assert {"image", "width", "height", "shelves", "products", "gaps", "counts"} <= set(rec)
    assert rec["shelves"][0]["index"] == 1 and rec["shelves"][0]["y1"] < rec["shelves"][1]["y1"]
    product = rec["products"][0]
    assert set(product) == {"bbox", "score", "shelf", "sku", "source"} and len(product["bbox"]) == 4
    assert {p["source"] for p in rec["products"]} == {"detector"}  # no catalog, no planogram
    assert rec["counts"]["products"] == len(rec["products"])
    for gap in rec["gaps"]:
        assert {"bbox", "shelf", "width_px"} <= set(gap)
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == sorted(
        f"{p.stem}.png" for p in images
    )


def test_analyze_bad_files_do_not_stop_the_batch(
    cli: CliRunner, rendered: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    good = next((rendered / "images").iterdir())
    result = cli.invoke(
        app, ["analyze", str(tmp_path / "missing.jpg"), str(bad), str(good), "--json"]
    )
    assert result.exit_code == 1
    assert len(result.stdout.strip().splitlines()) == 1
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"error: {tmp_path / 'missing.jpg'}: no such file",
        f"error: {bad}: not an image (unrecognised format)",
    ]
    assert "Traceback" not in result.output


def test_check_json_last_line(cli: CliRunner, rendered: Path) -> None:
    truth = json.loads((rendered / "truth.json").read_text())
    name, t = next(iter(truth.items()))
    result = cli.invoke(
        app,
        [
            "check",
            str(rendered / "images" / name),
            "--planogram",
            str(rendered / "planogram.csv"),
            "--catalog",
            str(rendered / "catalog.csv"),
            "--fixture",
            t["fixture"],
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) >= {"image", "compliance", "findings", "realogram"}
    assert {"osa_pct", "compliance_strict_pct", "compliance_lenient_pct"} <= set(
        report["compliance"]
    )
    for f in report["findings"]:
        assert set(f) >= {"type", "shelf", "position", "expected_sku", "observed_sku", "bbox"}


def test_stores_and_fixtures(cli: CliRunner, home: Path) -> None:
    assert (
        cli.invoke(
            app,
            [
                "stores",
                "add",
                "S9",
                "--name",
                "Nine",
                "--region",
                "West",
                "--timezone",
                "Europe/Paris",
            ],
        ).exit_code
        == 0
    )
    dup = cli.invoke(app, ["stores", "add", "S9"])
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    bad_tz = cli.invoke(app, ["stores", "add", "S8", "--timezone", "Mars/Olympus"])
    assert bad_tz.exit_code == 1 and "unknown timezone" in bad_tz.stderr
    assert (
        cli.invoke(
            app, ["fixtures", "add", "S9", "F1", "--width-cm", "120", "--shelves", "5"]
        ).exit_code
        == 0
    )
    unknown = cli.invoke(app, ["fixtures", "add", "NOPE", "F1"])
    assert unknown.exit_code == 1 and "unknown store 'NOPE'" in unknown.stderr
    listing = cli.invoke(app, ["stores", "list"]).stdout
    assert "S9\tNine\tWest\tEurope/Paris" in listing
    assert "S9\tF1\t\t120.0\t5" in cli.invoke(app, ["fixtures", "list"]).stdout


def test_ingest_unknown_fixture_and_duplicates(
    cli: CliRunner, home: Path, rendered: Path, tmp_path: Path
) -> None:
    photo = next((rendered / "images").iterdir())
    missing = cli.invoke(app, ["ingest", str(photo), "--store", "S1", "--fixture", "F1"])
    assert missing.exit_code == 1 and "unknown store 'S1'" in missing.stderr
    cli.invoke(app, ["stores", "add", "S1"])
    cli.invoke(app, ["fixtures", "add", "S1", "F1"])
    bad = tmp_path / "zero.jpg"
    bad.write_bytes(b"")
    first = cli.invoke(app, ["ingest", str(photo), str(bad), "--store", "S1", "--fixture", "F1"])
    assert first.exit_code == 1
    assert "1 ingested, 0 duplicates, 1 rejected" in first.stdout
    assert f"error: {bad}: empty file" in first.stderr
    again = cli.invoke(app, ["ingest", str(photo), "--store", "S1", "--fixture", "F1"])
    assert again.exit_code == 0 and "already ingested" in again.stdout
    stored = list((home / "photos").rglob("*.jpg"))
    assert len(stored) == 1


def test_catalog_import_is_all_or_nothing(cli: CliRunner, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,brand,category,width_cm,height_cm\nA,a,b,c,5,10\nB,b,b,c,zero,10\n")
    result = cli.invoke(app, ["catalog", "import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}:3: width_cm is not a number: 'zero'"
    path.write_text("sku,name,brand,category,width_cm,height_cm\nA,a,b,c,5,10\n")
    assert "1 added" in cli.invoke(app, ["catalog", "import", str(path)]).stdout
    assert "1 unchanged" in cli.invoke(app, ["catalog", "import", str(path)]).stdout


def test_export_rejects_bad_dates(cli: CliRunner, home: Path) -> None:
    result = cli.invoke(app, ["export", "products", "--from", "yesterday"])
    assert result.exit_code == 1 and "not an ISO date" in result.stderr
