"""Day-to-day commands: ingest, worker, status, audit, export, synth, demo, dashboard."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from enum import StrEnum
from pathlib import Path

import typer

from shelfwatch.cli.common import database, fail, friendly_errors, settings
from shelfwatch.services.timeutil import parse_date


@friendly_errors
def ingest_cmd(
    paths: list[Path] = typer.Argument(None, help="Photo files or folders."),
    store: str = typer.Option(None, "--store", help="Store code."),
    fixture: str = typer.Option(None, "--fixture", help="Fixture code."),
    captured_at: str = typer.Option(
        None, "--captured-at", help="ISO time (default: EXIF, else the file's time)."
    ),
    watch_dir: Path = typer.Option(
        None, "--watch", help="Watch DIR/<store>/<fixture>/ for new photos (Ctrl+C stops)."
    ),
    settle: float = typer.Option(2.0, "--settle", help="Seconds a file must stay unchanged."),
    capture: bool = typer.Option(
        False, "--capture", help="The photos (or a folder of them) are one capture of the fixture."
    ),
) -> None:
    """Validate, store and queue photos for processing (or watch a folder for them). A video
    is one capture of the fixture; so are photos given with --capture (in walk order)."""
    from shelfwatch.services.ingest import expand_paths, ingest_capture, ingest_paths, watch

    if watch_dir is not None:
        if not watch_dir.is_dir():
            raise fail(f"{watch_dir}: not a folder")
        typer.echo(f"watching {watch_dir}/<store>/<fixture>/ (Ctrl+C stops)")
        watch(
            database(),
            watch_dir,
            settings().photo_store(),
            settle_s=settle,
            report=lambda status, msg: typer.echo(f"{status}: {msg}", err=status == "rejected"),
        )
        return
    if not paths or not store or not fixture:
        raise fail("give photos with --store and --fixture, or --watch DIR")
    if capture:
        files = list(expand_paths(paths))
        with database().begin() as session:
            status, photo = ingest_capture(
                session, files, store, fixture, settings().photo_store(), captured_at
            )
        typer.echo(f"capture of {len(files)} photos {status} (id {photo.id})")
        return
    report = ingest_paths(
        database(),
        paths,
        store,
        fixture,
        settings().photo_store(),
        captured_at,
        progress=True,
    )
    for path in report.duplicates:
        typer.echo(f"already ingested: {path}")
    for path, reason in report.skipped:
        typer.echo(f"skipped: {path}: {reason}", err=True)
    for path, reason in report.rejected:
        typer.echo(f"error: {path}: {reason}", err=True)
    typer.echo(
        f"{len(report.added)} ingested, {len(report.duplicates)} duplicates, "
        f"{len(report.rejected)} rejected, {len(report.skipped)} skipped"
    )
    if report.rejected:
        raise typer.Exit(1)
    if not report.added and not report.duplicates:
        raise fail("no photo found in what was given")


STARTUP_WAIT_S = 120.0  # how long a starting worker waits for its database


@friendly_errors
def worker_cmd(
    until_empty: bool = typer.Option(False, "--until-empty", help="Stop when the queue is empty."),
    processes: int = typer.Option(1, "--processes", min=1, help="Worker processes."),
    backend: str = typer.Option(None, "--backend", help="Segmentation backend."),
) -> None:
    """Process queued photos."""
    import logging
    import multiprocessing as mp

    from shelfwatch.services.worker import DB_ERRORS, wait_for_database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    s = settings()
    # A worker may start before its database does (a restart, containers starting together).
    try:
        factory = wait_for_database(
            lambda: database(pre_ping=False), "the schema check", give_up_s=STARTUP_WAIT_S
        )
    except DB_ERRORS as exc:
        raise fail(
            f"database unreachable for {STARTUP_WAIT_S:.0f} s: {str(exc).splitlines()[0]}"
        ) from exc
    if processes > 1 and s.resolved_database_url.startswith("sqlite"):
        raise fail("SQLite supports one worker process; use PostgreSQL for --processes > 1")
    name = backend or s.backend
    _exit_on_sigterm()
    if processes == 1:
        from shelfwatch.services.worker import worker_from_settings

        result = worker_from_settings(factory, s, name).run(until_empty=until_empty, progress=True)
        typer.echo(f"{result['done']} done, {result['failed']} failed")
        return
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_process, args=(name, until_empty)) for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:  # stopped: each child hands its photos back before it exits
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join()


def _exit_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop, the dashboard) ends a worker as Ctrl+C does: cleanly."""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)


def _worker_process(backend: str, until_empty: bool) -> None:
    import logging

    from shelfwatch.services.worker import worker_from_settings

    _exit_on_sigterm()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    factory = database(ensure=False, pre_ping=False)
    worker_from_settings(factory, settings(), backend).run(until_empty=until_empty)


@friendly_errors
def status_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Photos by processing state, queue age, throughput and errors."""
    from shelfwatch.services.status import queue_status

    with database()() as session:
        status = queue_status(session)
    if as_json:
        typer.echo(json.dumps(status))
        return
    counts = status["photos"]
    typer.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))  # type: ignore[union-attr]
    typer.echo(
        f"oldest queued: {status['oldest_queued_age_s'] or '-'} s; "
        f"throughput: {status['throughput_per_min']}/min"
    )
    for w in status["workers"]:  # type: ignore[union-attr]
        state = "alive" if w["alive"] else "STOPPED"
        typer.echo(
            f"worker {w['name']} ({w['backend']}): {state}, heartbeat {w['heartbeat_age_s']} s "
            f"ago, {w['done']} done"
        )
    if not status["workers"]:
        typer.echo("no worker running: start one with `shelfwatch worker`")
    for p in status["stalled"]:  # type: ignore[union-attr]
        typer.echo(f"stalled: photo {p['photo_id']} ({p['name']}) on {p['worker']}: {p['why']}")
    for e in status["errors"]:  # type: ignore[union-attr]
        typer.echo(
            f"photo {e['photo_id']} {e['name']} ({e['sha256'][:12]}) {e['status']}, "
            f"{e['attempts']} attempts: {e['error']}"
        )


@friendly_errors
def requeue_cmd(
    photos: list[str] = typer.Argument(None, help="Photo ids or SHA-256 prefixes."),
    quarantined: bool = typer.Option(False, "--quarantined", help="Every quarantined photo."),
    failed: bool = typer.Option(False, "--failed", help="Every failed photo."),
) -> None:
    """Retry failed or quarantined photos with a fresh attempt count."""
    from sqlalchemy import select

    from shelfwatch.db.models import Photo
    from shelfwatch.services.worker import RETRYABLE, requeue

    if not photos and not quarantined and not failed:
        raise fail("give photo ids, --quarantined or --failed")
    factory = database()
    ids: list[int] | None = None
    if photos:
        ids = []
        with factory() as session:
            for ref in photos:
                query = (
                    select(Photo).where(Photo.id == int(ref))
                    if ref.isdigit()
                    else select(Photo).where(Photo.sha256.startswith(ref.lower()))
                )
                found = session.scalars(query.limit(2)).all()
                if len(found) != 1:
                    raise fail(f"{ref}: {'no' if not found else 'more than one'} such photo")
                if found[0].status not in RETRYABLE:
                    raise fail(f"{ref}: photo is {found[0].status}, not failed or quarantined")
                ids.append(found[0].id)
    n = requeue(factory, ids) if ids else 0
    statuses = [s for s, chosen in (("quarantined", quarantined), ("failed", failed)) if chosen]
    if statuses:
        n += requeue(factory, None, tuple(statuses))
    typer.echo(f"{n} photo(s) queued again")


@friendly_errors
def audit_cmd(
    store: str = typer.Option(..., "--store", help="Store code."),
    date: str = typer.Option(..., "--date", help="Local date YYYY-MM-DD."),
) -> None:
    """Compute a store's audit for a day (replaces an earlier run of the same audit)."""
    from shelfwatch.services.audits import run_audit

    with database().begin() as session:
        result = run_audit(session, store, parse_date(date))
        a = result.audit
        typer.echo(
            f"audit {store} {a.audit_date}: {a.photos} photos, {a.products} products, "
            f"{a.gaps} gaps, OSA {a.osa_pct}%, compliance {a.compliance_strict_pct}% "
            f"strict / {a.compliance_lenient_pct}% lenient, "
            f"{len(a.findings)} findings"
        )
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


class ExportKind(StrEnum):
    audits = "audits"
    findings = "findings"
    gaps = "gaps"
    products = "products"
    counts = "counts"
    photos = "photos"


@friendly_errors
def export_cmd(
    kind: ExportKind = typer.Argument(..., help="What to export."),
    out: str = typer.Option("-", "--out", help="CSV file, or - for stdout."),
    store: str = typer.Option(None, "--store", help="Only this store."),
    date_from: str = typer.Option(None, "--from", help="From date YYYY-MM-DD."),
    date_to: str = typer.Option(None, "--to", help="To date YYYY-MM-DD (inclusive)."),
) -> None:
    """Export a table as CSV (streamed)."""
    from shelfwatch.services.exports import write_csv
    from shelfwatch.services.stores import get_store

    filters = {
        "store": store,
        "date_from": parse_date(date_from) if date_from else None,
        "date_to": parse_date(date_to) if date_to else None,
    }
    with database()() as session:
        if store:
            get_store(session, store)
        if out == "-":
            write_csv(session, kind.value, sys.stdout, **filters)
            return
        tmp = Path(out + ".part")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(session, kind.value, fh, **filters)
        tmp.replace(out)
    typer.echo(f"{n} rows written to {out}", err=True)


@friendly_errors
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Output folder."),
    photos: int = typer.Option(20, "--photos", min=1, help="Number of photos."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same data)."),
    variety: bool = typer.Option(
        False,
        "--variety",
        help="Far more varied fixtures: packed or spread facings, 3-19 cm packs, shared "
        "colours, no outlines.",
    ),
) -> None:
    """Render synthetic shelf photos with exact ground truth."""
    from shelfwatch.synth import SynthConfig, render_dataset

    render_dataset(out, SynthConfig(photos=photos, seed=seed, variety=variety), progress=True)
    typer.echo(f"{photos} photos with ground truth in {out}")


def dashboard_script() -> Path:
    import shelfwatch

    package = Path(shelfwatch.__file__).resolve().parent
    for candidate in (package.parent / "dashboards", package / "_dashboards"):
        if (candidate / "Overview.py").exists():
            return candidate / "Overview.py"
    raise FileNotFoundError("dashboards/Overview.py is missing from this install")


def launch_dashboard(port: int, address: str = "localhost", worker: bool = True) -> None:
    """Run Streamlit (and a worker beside it) until Ctrl+C or SIGTERM, then stop both."""
    from shelfwatch.webui import MAX_UPLOAD_MB

    script = dashboard_script()
    typer.echo(f"dashboard on http://{address}:{port}  (Ctrl+C to stop)")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--client.toolbarMode",
        "viewer",
    ]
    children = [subprocess.Popen(cmd, env=os.environ.copy())]
    if worker:
        typer.echo("processing uploads with a worker beside it (--no-worker: none)")
        children.append(
            subprocess.Popen([sys.executable, "-m", "shelfwatch", "worker"], env=os.environ.copy())
        )

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # one path for Ctrl+C and SIGTERM: the finally below

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


@friendly_errors
def dashboard_cmd(
    port: int = typer.Option(None, "--port", help="Port (default: settings, 8501)."),
    address: str = typer.Option("localhost", "--address", help="Address to listen on."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Do not process uploads here (workers run elsewhere)."
    ),
) -> None:
    """Start the store-manager dashboard, with a worker that processes uploads."""
    database()
    launch_dashboard(port or settings().dashboard_port, address, worker=not no_worker)


@friendly_errors
def demo_cmd(
    no_dashboard: bool = typer.Option(False, "--no-dashboard", help="Do not start the dashboard."),
    data: Path = typer.Option(None, "--data", help="Sample data folder (default: bundled)."),
    port: int = typer.Option(None, "--port", help="Dashboard port."),
    no_worker: bool = typer.Option(False, "--no-worker", help="No worker beside the dashboard."),
) -> None:
    """Run everything on the bundled sample data and open the dashboard."""
    from shelfwatch.services.demo import run_demo

    s = settings()
    run_demo(s, data)
    if not no_dashboard:
        launch_dashboard(port or s.dashboard_port, worker=not no_worker)


@friendly_errors
def schedule_cmd(
    at: str = typer.Option("06:00", "--at", help="Local time of day (HH:MM) of each audit."),
    catchup_days: int = typer.Option(7, "--catchup-days", min=1, help="Missed days to redo."),
) -> None:
    """Run daily audits at a local time in each store's time zone (Ctrl+C stops)."""
    import datetime as dt
    import logging

    from apscheduler.schedulers.blocking import BlockingScheduler

    from shelfwatch.services.schedule import run_due

    try:
        when = dt.time.fromisoformat(at)
    except ValueError:
        raise fail(f"--at must be HH:MM, got {at!r}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    factory = database()

    def tick() -> None:
        done = run_due(factory, dt.datetime.now(dt.UTC), when, catchup_days)
        for item in done:
            typer.echo(f"audited {item.store} {item.day}")

    tick()  # catch up at start: audits missed while the scheduler was down
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(tick, "interval", minutes=1, max_instances=1, coalesce=True)
    typer.echo(f"audits at {when:%H:%M} local time of each store; Ctrl+C stops")
    scheduler.start()
