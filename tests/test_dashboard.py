"""Every dashboard page through Streamlit's AppTest, on real databases, with access control."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import ComplianceFinding, Photo, Store
from shelfwatch.settings import get_settings
from shelfwatch.webui import AUTH_KEY
from tests.conftest import PASSWORD

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
PAGES = {
    "overview": DASHBOARDS / "Overview.py",
    "fixture": DASHBOARDS / "pages" / "1_Fixture.py",
    "findings": DASHBOARDS / "pages" / "2_Findings.py",
    "upload": DASHBOARDS / "pages" / "3_Upload.py",
    "exports": DASHBOARDS / "pages" / "4_Exports.py",
}


def page(name: str, user: str | None = None, **params: str) -> AppTest:
    """The page as ``user`` (already logged in) with URL query parameters, run once."""
    at = AppTest.from_file(str(PAGES[name]), default_timeout=120)
    if user:
        now = time.time()
        at.session_state[AUTH_KEY] = {"username": user, "login_at": now, "seen_at": now}
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.error] + [e.value for e in at.warning] + [e.value for e in at.info]
    return " ".join(str(p) for p in parts)


def factory():
    return session_factory(get_settings().resolved_database_url)


def photo_of(store: str) -> int:
    with factory()() as session:
        return session.scalar(
            select(Photo.id).join(Store, Photo.store_id == Store.id).where(Store.code == store)
        )


# --- no data, login, sessions -------------------------------------------------------------


def test_unmigrated_database_shows_guidance(home: Path) -> None:
    for name in PAGES:
        at = page(name)
        assert not at.exception, name
        assert "shelfwatch demo" in texts(at), name


def test_database_without_audits_explains_itself(home: Path) -> None:
    from shelfwatch.services.stores import add_store
    from shelfwatch.services.users import add_user

    get_settings().ensure_dirs()
    upgrade(get_settings().resolved_database_url)
    with factory().begin() as session:
        add_store(session, "S9")
        add_user(session, "root", PASSWORD, "admin")
    expected = {
        "overview": "No audits yet",
        "fixture": "No processed photos",
        "findings": "No audits yet",
        "upload": "no fixtures yet",
        "exports": "",
    }
    for name, message in expected.items():
        at = page(name, "root")
        assert not at.exception, name
        assert message in texts(at), name


def test_no_users_yet_says_how_to_add_one(home: Path) -> None:
    get_settings().ensure_dirs()
    upgrade(get_settings().resolved_database_url)
    at = page("overview")
    assert not at.exception and "shelfwatch users add" in texts(at)


def _login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def test_every_page_asks_for_a_login_first(demo_home: Path) -> None:
    for name in PAGES:
        at = page(name)
        assert not at.exception, name
        assert [t.label for t in at.text_input] == ["Username", "Password"], name
        assert not at.metric and not at.dataframe, name  # nothing of the stores shown


def test_login_wrong_password_then_lockout(demo_home: Path) -> None:
    at = page("overview")
    at = _login(at, "anna", "wrong password")
    assert "wrong username or password" in texts(at)
    for _ in range(4):
        at = _login(at, "anna", "still wrong")
    assert "locked" in texts(at)
    at = _login(at, "anna", PASSWORD)  # the right password does not help while locked
    assert "too many failed logins" in texts(at) and not at.metric
    at = _login(page("overview"), "bert", PASSWORD)  # another account is not affected
    assert not at.exception and [m.label for m in at.metric] == ["S002 OSA"]


def test_unknown_and_disabled_users_cannot_log_in(demo_home: Path, cli) -> None:
    from shelfwatch.cli import app

    assert cli.invoke(app, ["users", "disable", "anna"]).exit_code == 0
    at = _login(page("overview"), "anna", PASSWORD)
    assert "disabled" in texts(at) and not at.metric
    at = _login(page("overview"), "nobody", PASSWORD)
    assert "wrong username or password" in texts(at)


def test_disabling_ends_a_running_session(demo_home: Path, cli) -> None:
    from shelfwatch.cli import app

    at = page("overview", "anna")
    assert at.metric
    assert cli.invoke(app, ["users", "disable", "anna"]).exit_code == 0
    at.run()
    assert "disabled" in texts(at) and not at.metric


def test_idle_session_expires(demo_home: Path) -> None:
    at = AppTest.from_file(str(PAGES["overview"]), default_timeout=120)
    stale = time.time() - get_settings().session_idle_minutes * 60 - 5
    at.session_state[AUTH_KEY] = {"username": "boss", "login_at": stale, "seen_at": stale}
    at.run()
    assert "session expired" in texts(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"] and not at.metric


def test_login_through_the_form_and_log_out(demo_home: Path) -> None:
    at = _login(page("overview"), "boss", PASSWORD)
    assert not at.exception
    assert [m.label for m in at.metric] == ["S001 OSA", "S002 OSA"]
    at.sidebar.button[0].click().run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]


# --- overview ----------------------------------------------------------------------------


def test_overview_kpis_trend_worst_fixtures(demo_home: Path) -> None:
    at = page("overview", "boss")
    assert not at.exception
    assert [m.label for m in at.metric] == ["S001 OSA", "S002 OSA"]
    assert all(m.value.endswith("%") for m in at.metric)
    kpis = at.dataframe[0].value
    assert list(kpis["store"]) == ["S001", "S002"] and kpis["products"].min() > 0
    assert {"osa_change", "compliance_change", "gaps_change", "previous_audit", "models"} <= set(
        kpis
    )
    assert all("facings" in m for m in kpis["models"])  # which model produced the audit
    assert kpis["previous_audit"].notna().all()  # the demo has five audit days per store
    assert len(at.get("vega_lite_chart")) == 1  # the trend chart
    worst = at.dataframe[1].value
    assert list(worst.columns) == ["store", "fixture", "aisle", "open_findings", "impact"]
    assert list(worst["impact"]) == sorted(worst["impact"], reverse=True)
    assert len(at.get("download_button")) == 3  # KPIs, trend, worst fixtures
    assert at.date_input[0].value > max(kpis["previous_audit"])  # the latest day by default


def test_overview_for_one_store_and_an_earlier_day(demo_home: Path) -> None:
    first = page("overview", "boss")
    days = sorted(first.dataframe[0].value["previous_audit"].astype(str))
    at = page("overview", "boss", store="S002", date=days[0])
    assert not at.exception
    assert [m.label for m in at.metric] == ["S002 OSA"]
    assert list(at.dataframe[0].value["store"]) == ["S002"]
    assert str(at.date_input[0].value) == days[0]


def test_overview_bad_dates_are_explained(demo_home: Path) -> None:
    at = page("overview", "boss", date="not-a-date")
    assert not at.exception and "YYYY-MM-DD" in texts(at) and at.metric
    at = page("overview", "boss", date="1999-01-01")
    assert not at.exception and "No audits on 1999-01-01" in texts(at) and at.metric


def test_manager_sees_only_own_store(demo_home: Path) -> None:
    at = page("overview", "anna")
    assert not at.exception
    assert [m.label for m in at.metric] == ["S001 OSA"]
    assert set(at.dataframe[0].value["store"]) == {"S001"}
    assert set(at.dataframe[1].value["store"]) <= {"S001"}
    assert at.selectbox[0].options == ["all my stores", "S001"]


def test_regional_user_sees_region(demo_home: Path) -> None:
    at = page("overview", "nora")  # region North = S001 only
    assert [m.label for m in at.metric] == ["S001 OSA"]


@pytest.mark.parametrize("name", list(PAGES))
def test_manager_cannot_open_other_store_by_url(demo_home: Path, name: str) -> None:
    at = page(name, "anna", store="S002")
    assert not at.exception
    assert "No access to store 'S002'" in texts(at)
    assert not at.metric and not at.dataframe and not at.get("image")


# --- fixture and photo view --------------------------------------------------------------


def test_fixture_view_layers_and_planogram(demo_home: Path) -> None:
    at = page("fixture", "boss", store="S001")
    assert not at.exception
    assert len(at.get("image")) == 1
    assert any("Analysed by opencv (shelfwatch" in c.value for c in at.caption)
    assert [t.label for t in at.toggle] == ["Product masks", "Shelf lines", "Gaps", "SKU labels"]
    planned, observed = at.dataframe[0].value, at.dataframe[1].value
    assert list(planned.columns) == ["shelf", "position", "sku", "facings", "finding"]
    assert len(planned) > 0 and len(observed) > 0
    assert set(observed["sku"]) - {"unknown"}  # SKUs were recognised
    for toggle in at.toggle:
        toggle.set_value(not toggle.value)
    at.run()
    assert not at.exception and len(at.get("image")) == 1
    assert at.query_params["photo"]  # the choice is in the address, to share or bookmark


def test_fixture_view_highlights_findings(demo_home: Path) -> None:
    with factory()() as session:
        photo_id = session.scalar(
            select(ComplianceFinding.photo_id).where(ComplianceFinding.type == "missing")
        )
    at = page("fixture", "boss", photo=str(photo_id))
    assert not at.exception
    planned = at.dataframe[0].value
    assert "missing" in set(planned["finding"])


def test_photo_of_other_store_by_url_is_refused(demo_home: Path) -> None:
    at = page("fixture", "anna", photo=str(photo_of("S002")))
    assert "No access to photo" in texts(at) and not at.get("image")
    at = page("fixture", "anna", photo="12abc")
    assert "No access to photo" in texts(at) and not at.get("image")
    own = page("fixture", "anna", photo=str(photo_of("S001")))
    assert not own.exception and len(own.get("image")) == 1


# --- findings worklist -------------------------------------------------------------------


def test_findings_worklist_mark_fixed(demo_home: Path) -> None:
    at = page("findings", "anna")
    assert not at.exception
    frame = at.dataframe[0].value
    assert set(frame["store"]) == {"S001"}
    assert list(frame["impact"]) == sorted(frame["impact"], reverse=True)
    first = int(frame["finding_id"].iloc[0])
    assert at.selectbox[1].value == first
    [b for b in at.button if b.label == "Mark fixed"][0].click().run()
    assert not at.exception and "marked fixed by anna" in at.success[0].value
    with factory()() as session:
        finding = session.get(ComplianceFinding, first)
        assert finding.status == "fixed" and finding.status_by == "anna"
        assert finding.status_at is not None
    # Fixed findings leave the default (open + acknowledged) list.
    assert first not in set(at.dataframe[0].value["finding_id"])


def test_findings_filter_by_status_and_store(demo_home: Path) -> None:
    at = page("findings", "boss", store="S002")
    assert set(at.dataframe[0].value["store"]) == {"S002"}
    at.multiselect[0].set_value(["confirmed"]).run()
    assert not at.exception and "Nothing to do" in texts(at)


# --- upload and exports -----------------------------------------------------------------


def test_upload_page_scoped_status(demo_home: Path) -> None:
    at = page("upload", "anna")
    assert not at.exception
    assert at.selectbox[0].options == ["S001"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["done"] == "10"  # S001's photos only (the demo has 20)
    admin = page("upload", "boss")
    assert {m.label: m.value for m in admin.metric}["done"] == "20"


def test_exports_page_limited_to_own_stores(demo_home: Path) -> None:
    at = page("exports", "anna")
    assert not at.exception
    at.selectbox[0].select("findings")
    at.button[0].click().run()
    assert not at.exception
    assert at.success[0].value.endswith("rows")
    n = int(at.success[0].value.split()[0])
    with factory()() as session:
        from shelfwatch.services.exports import export_rows

        mine = sum(1 for _ in export_rows(session, "findings", store="S001"))
        every = sum(1 for _ in export_rows(session, "findings"))
    assert n == mine < every


def test_bench_dashboard_builds_and_times_every_page(tmp_path: Path, cli) -> None:
    """A small chain through the same command that builds the 100-store benchmark."""
    import json

    from shelfwatch.cli import app

    result = cli.invoke(
        app,
        [
            "bench",
            "dashboard",
            "--stores",
            "3",
            "--days",
            "4",
            "--repeats",
            "1",
            "--json",
            "--home",
            str(tmp_path / "bench"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    built = lines[0]["built"]
    assert built["photos"] == 3 * 4 * 3 and built["audits"] == 3 * 4
    assert built["product_instances"] > 20 * built["photos"]
    timed = lines[1:]
    assert {(r["page"], r["user"]) for r in timed} == {
        (page, user)
        for page in ("overview", "fixture", "findings", "upload", "exports")
        for user in ("bench-admin", "bench-manager")
    }
    assert all(r["median_ms"] > 0 for r in timed)


def test_overview_lists_retakes_with_reasons(demo_home: Path, cli, tmp_path: Path) -> None:
    from PIL import Image

    from shelfwatch.cli import app

    with factory()() as session:
        photo = session.scalars(select(Photo).order_by(Photo.captured_at.desc())).first()
        store, fixture, when = photo.store.code, photo.fixture.code, photo.captured_at
    blank = tmp_path / "lens-cap.jpg"
    Image.new("RGB", (1200, 900), (3, 3, 3)).save(blank)
    args = ["ingest", str(blank), "--store", store, "--fixture", fixture]
    assert cli.invoke(app, [*args, "--captured-at", when.isoformat()]).exit_code == 0
    assert cli.invoke(app, ["worker", "--until-empty"]).exit_code == 0
    at = page("overview", "boss")
    assert not at.exception
    retakes = next(d.value for d in at.dataframe if "reasons" in d.value.columns)
    assert list(retakes["store"]) == [store] and list(retakes["fixture"]) == [fixture]
    assert list(retakes["reasons"]) == ["blank"]
    other = "S002" if store == "S001" else "S001"
    narrowed = page("overview", "boss", store=other)
    assert not any("reasons" in d.value.columns for d in narrowed.dataframe)


def test_upload_page_shows_workers_and_admin_retries(demo_home: Path) -> None:
    from shelfwatch.db.models import PhotoStatus

    with factory().begin() as session:
        photo = session.scalars(select(Photo).order_by(Photo.id)).first()
        photo.status, photo.attempts = PhotoStatus.quarantined.value, 3
        photo.last_error = "OSError: disk gone"
        photo_id = photo.id
    at = page("upload", "boss")
    assert not at.exception
    assert "No worker is running" in texts(at)
    manager = page("upload", "anna" if photo.store_id == 1 else "bert")
    assert not [b for b in manager.button if b.label.startswith("Retry")]  # admins only
    retry = next(b for b in at.button if b.label.startswith("Retry"))
    retry.click().run()
    assert not at.exception and "1 photo(s) queued again" in at.success[0].value
    with factory()() as session:
        again = session.get(Photo, photo_id)
        assert (again.status, again.attempts) == ("queued", 0)
