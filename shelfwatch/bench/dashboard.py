"""``shelfwatch bench dashboard``: a chain-sized database, and how fast each page renders on it.

The database holds ``stores`` stores x ``days`` days x 3 fixtures of photos, each a copy of a
real analysis of a bundled sample photo (its shelves, product instances with masks, gaps),
and one audit per store and day with the findings and KPIs the compliance check gives those
photos. 100 stores x 90 days is about a million product instances.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.convert import load_scene, scene_rows
from shelfwatch.db.engine import session_factory
from shelfwatch.db.migrate import upgrade
from shelfwatch.db.models import (
    Audit,
    ComplianceFinding,
    Fixture,
    Gap,
    Photo,
    PhotoShelf,
    Planogram,
    PlanogramPosition,
    ProductInstance,
    Store,
)
from shelfwatch.planogram.compliance import ComplianceReport, check_compliance
from shelfwatch.services.audits import finding_row, weighted_kpis
from shelfwatch.services.catalog import (
    catalog_items,
    import_catalog,
    planogram_in_force,
    planogram_rows,
)
from shelfwatch.services.demo import run_demo, sample_data_dir
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.users import add_user
from shelfwatch.settings import Settings

# The chain's three fixture types, each modelled on one sample store's fixture.
TEMPLATE_FIXTURES = {"F01": ("S001", "F01"), "F02": ("S001", "F02"), "F03": ("S002", "F02")}
TIMEZONES = ("Europe/Oslo", "Europe/Berlin", "Europe/London", "America/New_York")
BENCH_PASSWORD = "bench-password"
CHUNK = 50_000


@dataclass
class Template:
    """One analysed sample photo, ready to copy: its rows, report and stored image."""

    rows: dict[type, list[dict[str, object]]]
    report: ComplianceReport
    positions: int
    storage_path: str
    width: int
    height: int


def _templates(
    work: Path, say: Callable[[str], None]
) -> tuple[dict[str, list[Template]], dict[str, list[tuple[int, int, str, int]]], Settings]:
    """Run the demo once in ``work`` and keep each fixture type's analysed photos."""
    settings = Settings(home=work, database_url=None, storage_dir=None)
    run_demo(settings, say=lambda _msg: None)
    say("demo analysed; building templates")
    templates: dict[str, list[Template]] = {}
    plans: dict[str, list[tuple[int, int, str, int]]] = {}
    with session_factory(settings.resolved_database_url)() as session:
        catalog = {c.sku: c for c in catalog_items(session)}
        for code, (store_code, fixture_code) in TEMPLATE_FIXTURES.items():
            photos = session.scalars(
                select(Photo)
                .join(Store, Photo.store_id == Store.id)
                .join(Fixture, Photo.fixture_id == Fixture.id)
                .where(Store.code == store_code, Fixture.code == fixture_code)
                .order_by(Photo.id)
            ).all()
            plan = planogram_in_force(session, photos[0].store, fixture_code, dt.date.today())
            assert plan is not None, "the sample data has a planogram for every fixture"
            rows = planogram_rows(plan)
            plans[code] = [(p.shelf, p.position, p.sku, p.facings) for p in plan.positions]
            templates[code] = []
            for photo in photos:
                scene = load_scene(session, photo)
                templates[code].append(
                    Template(
                        scene_rows(0, scene),
                        check_compliance(scene, rows, catalog),
                        len(rows),
                        photo.storage_path,
                        photo.width,
                        photo.height,
                    )
                )
    return templates, plans, settings


def _insert(session: Session, model: type, rows: list[dict[str, object]]) -> None:
    for i in range(0, len(rows), CHUNK):
        session.execute(insert(model), rows[i : i + CHUNK])
    rows.clear()


def build_database(
    url: str,
    storage_dir: Path,
    stores: int = 100,
    days: int = 90,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> dict[str, int]:
    """Fill an empty database at ``url`` (and ``storage_dir``) with a chain's history."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        templates, plans, demo = _templates(Path(tmp) / "home", say)
        storage_dir.mkdir(parents=True, exist_ok=True)
        for items in templates.values():
            for t in items:
                target = storage_dir / t.storage_path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(demo.resolved_storage_dir / t.storage_path, target)
        upgrade(url)
        factory = session_factory(url)
        with factory.begin() as session:
            if session.scalar(select(func.count(Store.id))):
                raise ShelfWatchError(f"{url} is not empty; give an empty database")
            import_catalog(
                session, sample_data_dir() / "sample" / "catalog.csv", PhotoStore(storage_dir)
            )
    last_day = dt.date.today() - dt.timedelta(days=1)
    first_day = last_day - dt.timedelta(days=days - 1)
    pending: dict[type, list[dict[str, object]]] = {
        m: [] for m in (Photo, PhotoShelf, ProductInstance, Gap, Audit, ComplianceFinding)
    }
    counts = dict.fromkeys(pending, 0)
    photo_id = audit_id = 0
    with factory.begin() as session:
        for code, positions in plans.items():
            plan = Planogram(
                name=f"chain-{code}", version=1, fixture_code=code, effective_from=first_day
            )
            plan.positions = [
                PlanogramPosition(shelf=s, position=p, sku=sku, facings=n)
                for s, p, sku, n in positions
            ]
            session.add(plan)
        for n in range(1, stores + 1):
            store = Store(
                code=f"S{n:04d}",
                name=f"Store {n}",
                region=f"R{(n - 1) % 10 + 1:02d}",
                timezone=TIMEZONES[n % len(TIMEZONES)],
            )
            store.fixtures = [
                Fixture(code=code, aisle=f"A{i + 1}", width_cm=100.0, shelf_count=4)
                for i, code in enumerate(TEMPLATE_FIXTURES)
            ]
            session.add(store)
        session.flush()
        fixture_ids = {
            (s, f): i
            for s, f, i in session.execute(
                select(Store.code, Fixture.code, Fixture.id).join(
                    Store, Fixture.store_id == Store.id
                )
            )
        }
        store_ids = {c: i for c, i in session.execute(select(Store.code, Store.id))}
        for s_code, s_id in sorted(store_ids.items()):
            for d in range(days):
                day = first_day + dt.timedelta(days=d)
                audit_id += 1
                weights, products, gaps = [], 0, 0
                for k, code in enumerate(TEMPLATE_FIXTURES):
                    t = rng.choice(templates[code])
                    photo_id += 1
                    fixture_id = fixture_ids[(s_code, code)]
                    taken = dt.datetime.combine(day, dt.time(8, 5 * k), tzinfo=dt.UTC)
                    pending[Photo].append(
                        {
                            "id": photo_id,
                            "store_id": s_id,
                            "fixture_id": fixture_id,
                            "captured_at": taken,
                            "sha256": f"{photo_id:064x}",
                            "storage_path": t.storage_path,
                            "original_name": f"{s_code}_{code}_{day}.jpg",
                            "size_bytes": 0,
                            "width": t.width,
                            "height": t.height,
                            "status": "done",
                            "attempts": 1,
                            "processed_at": taken,
                            "backend": "opencv",
                            "created_at": taken,
                        }
                    )
                    for model, rows in t.rows.items():
                        pending[model].extend({**r, "photo_id": photo_id} for r in rows)
                    products += len(t.rows[ProductInstance])
                    gaps += len(t.rows[Gap])
                    weights.append((t.positions, t.report))
                    pending[ComplianceFinding].extend(
                        {**finding_row(f, fixture_id, photo_id), "audit_id": audit_id}
                        for f in t.report.findings
                    )
                pending[Audit].append(
                    {
                        "id": audit_id,
                        "store_id": s_id,
                        "audit_date": day,
                        "status": "done",
                        "photos": len(TEMPLATE_FIXTURES),
                        "products": products,
                        "gaps": gaps,
                        **weighted_kpis(weights),
                    }
                )
            if len(pending[ProductInstance]) >= CHUNK or s_code == max(store_ids):
                for model in pending:  # parents first: photos and audits before their rows
                    counts[model] += len(pending[model])
                    _insert(session, model, pending[model])
                say(f"{s_code}: {photo_id} photos, {counts[ProductInstance]} product instances")
        if session.bind.dialect.name == "postgresql":  # ids were given: move the sequences on
            for table, last in (("photos", photo_id), ("audits", audit_id)):
                session.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
                )
        add_user(session, "bench-admin", BENCH_PASSWORD, "admin")
        add_user(session, "bench-manager", BENCH_PASSWORD, "manager", stores=["S0001"])
    out = {m.__tablename__: c for m, c in counts.items()}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def time_pages(pages: dict[str, Path], users: list[str], repeats: int = 5) -> list[dict]:
    """Render each page as each user with Streamlit's AppTest: first and warm times, in ms."""
    from streamlit.testing.v1 import AppTest

    from shelfwatch.webui import AUTH_KEY

    # AppTest runs pages without a browser session; Streamlit warns about that on every call.
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    results = []
    for user in users:
        for name, script in pages.items():
            times = []
            for _ in range(repeats + 1):
                at = AppTest.from_file(str(script), default_timeout=300)
                now = time.time()
                at.session_state[AUTH_KEY] = {"username": user, "login_at": now, "seen_at": now}
                start = time.perf_counter()
                at.run()
                times.append((time.perf_counter() - start) * 1000)
                if at.exception:
                    raise RuntimeError(f"{name} as {user}: {at.exception[0].message}")
            results.append(
                {
                    "page": name,
                    "user": user,
                    "first_ms": round(times[0], 1),
                    "median_ms": round(statistics.median(times[1:]), 1),
                    "max_ms": round(max(times[1:]), 1),
                }
            )
    return results
