"""End to end: the demo pipeline in a temp SHELFWATCH_HOME, then exports and audits."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from shelfwatch.cli import app
from shelfwatch.services.exports import EXPORTS


def test_demo_then_exports(cli: CliRunner, home: Path) -> None:
    result = cli.invoke(app, ["demo", "--no-dashboard"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "20 ingested" in out and "20 done, 0 failed" in out
    summary = [line.split() for line in out.splitlines() if line.startswith(("S001", "S002"))]
    assert [row[0] for row in summary] == ["S001", "S002"]
    for row in summary:
        photos, products, gaps, audits = map(int, row[1:5])
        assert photos == 10 and audits == 5 and products > 300 and gaps >= 1
        assert 50.0 <= float(row[5]) <= 100.0  # OSA %

    products = cli.invoke(app, ["export", "products", "--out", "-"])
    assert products.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(products.stdout)))
    assert list(rows[0]) == EXPORTS["products"]
    assert len(rows) > 600 and {r["store"] for r in rows} == {"S001", "S002"}
    # Which model produced each result: the package version and the detector weights' hash.
    versions = {r["model_version"] for r in rows}
    assert len(versions) == 1 and versions.pop().startswith("shelfwatch 0.1.0 facings ")

    for kind in ("counts", "gaps", "audits", "findings"):
        res = cli.invoke(app, ["export", kind, "--store", "S002"])
        assert res.exit_code == 0, res.output
        parsed = list(csv.reader(io.StringIO(res.stdout)))
        assert parsed[0] == EXPORTS[kind] and len(parsed) > 1, kind
        assert {r[EXPORTS[kind].index("store")] for r in parsed[1:]} == {"S002"}

    counts = list(csv.DictReader(io.StringIO(cli.invoke(app, ["export", "counts"]).stdout)))
    assert sum(int(r["products"]) for r in counts) == len(rows)

    # Running the demo again changes nothing: no duplicate photos, audits replaced not added.
    again = cli.invoke(app, ["demo", "--no-dashboard"])
    assert again.exit_code == 0 and "0 ingested, 20 already there" in again.stdout
    # The first run made a dashboard login and printed its password; the second keeps it.
    login = [line for line in out.splitlines() if line.startswith("dashboard login: demo / ")]
    password = login[0].rsplit(" ", 1)[1]
    assert len(password) >= 8 and "password as printed on the first run" in again.stdout
    from shelfwatch.db.engine import session_factory
    from shelfwatch.services.users import authenticate
    from shelfwatch.settings import get_settings

    with session_factory(get_settings().resolved_database_url)() as session:
        assert authenticate(session, "demo", password).role == "admin"
    audits = list(csv.DictReader(io.StringIO(cli.invoke(app, ["export", "audits"]).stdout)))
    assert len(audits) == 10
    assert all(a["models"].startswith("shelfwatch 0.1.0 facings ") for a in audits)

    redo = cli.invoke(app, ["audit", "--store", "S001", "--date", audits[0]["date"]])
    assert redo.exit_code == 0, redo.output
    assert (
        len(list(csv.DictReader(io.StringIO(cli.invoke(app, ["export", "audits"]).stdout)))) == 10
    )

    status = cli.invoke(app, ["status", "--json"])
    assert '"done": 20' in status.stdout
