"""Reference data commands: database, stores, fixtures, catalog, planograms."""

from __future__ import annotations

from pathlib import Path

import typer

from shelfwatch.cli.common import database, friendly_errors, settings
from shelfwatch.services import catalog as catalog_service
from shelfwatch.services import stores as store_service
from shelfwatch.services.timeutil import parse_date

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
stores_app = typer.Typer(help="Stores.", no_args_is_help=True)
fixtures_app = typer.Typer(help="Fixtures (shelving units) of stores.", no_args_is_help=True)
catalog_app = typer.Typer(help="Product catalog.", no_args_is_help=True)
planogram_app = typer.Typer(help="Planograms (reference layouts).", no_args_is_help=True)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Bring the database to the newest schema (or REVISION)."""
    from shelfwatch.db.migrate import current_revision, upgrade

    s = settings()
    s.ensure_dirs()
    url = s.resolved_database_url
    upgrade(url, revision)
    typer.echo(f"database at revision {current_revision(url)}")


@db_app.command("downgrade")
@friendly_errors
def db_downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. base or -1."),
) -> None:
    """Step the schema back to REVISION."""
    from shelfwatch.db.migrate import current_revision, downgrade

    url = settings().resolved_database_url
    downgrade(url, revision)
    typer.echo(f"database at revision {current_revision(url)}")


@db_app.command("current")
@friendly_errors
def db_current() -> None:
    """Show the database's schema revision and the newest one."""
    from shelfwatch.db.migrate import current_revision, head_revision

    url = settings().resolved_database_url
    typer.echo(f"current: {current_revision(url)}  head: {head_revision(url)}")


@stores_app.command("add")
@friendly_errors
def stores_add(
    code: str = typer.Argument(..., help="Store code, unique."),
    name: str = typer.Option(None, "--name"),
    region: str = typer.Option(None, "--region"),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone, e.g. Europe/Berlin."),
) -> None:
    """Add a store."""
    with database().begin() as session:
        store = store_service.add_store(session, code, name, region, timezone)
        typer.echo(f"added store {store.code}")


@stores_app.command("list")
@friendly_errors
def stores_list() -> None:
    """List stores."""
    with database()() as session:
        for s in store_service.list_stores(session):
            typer.echo(f"{s.code}\t{s.name}\t{s.region or ''}\t{s.timezone}")


@fixtures_app.command("add")
@friendly_errors
def fixtures_add(
    store: str = typer.Argument(..., help="Store code."),
    code: str = typer.Argument(..., help="Fixture code, unique within the store."),
    aisle: str = typer.Option(None, "--aisle"),
    width_cm: float = typer.Option(None, "--width-cm", help="Fixture width in cm."),
    shelves: int = typer.Option(None, "--shelves", help="Number of shelves."),
) -> None:
    """Add a fixture to a store."""
    with database().begin() as session:
        f = store_service.add_fixture(session, store, code, aisle, width_cm, shelves)
        typer.echo(f"added fixture {f.code} to store {store}")


@fixtures_app.command("list")
@friendly_errors
def fixtures_list(store: str = typer.Option(None, "--store", help="Only this store.")) -> None:
    """List fixtures."""
    with database()() as session:
        for s, f in store_service.list_fixtures(session, store):
            typer.echo(
                f"{s.code}\t{f.code}\t{f.aisle or ''}\t{f.width_cm or ''}\t{f.shelf_count or ''}"
            )


@catalog_app.command("import")
@friendly_errors
def catalog_import(file: Path = typer.Argument(..., help="Catalog CSV or JSON.")) -> None:
    """Import a catalog (all or nothing)."""
    with database().begin() as session:
        res = catalog_service.import_catalog(session, file, settings().photo_store())
    typer.echo(f"catalog: {res.added} added, {res.updated} updated, {res.unchanged} unchanged")


@planogram_app.command("import")
@friendly_errors
def planogram_import(
    file: Path = typer.Argument(..., help="Planogram CSV or JSON."),
    effective_from: str = typer.Option(
        None, "--effective-from", help="YYYY-MM-DD (default today)."
    ),
    store: str = typer.Option(None, "--store", help="Scope the planogram(s) to this store."),
) -> None:
    """Import planograms as new versions (all or nothing)."""
    day = parse_date(effective_from) if effective_from else None
    with database().begin() as session:
        results = catalog_service.import_planogram(session, file, day, store)
    for name, version, status in results:
        typer.echo(f"planogram {name} v{version}: {status}")
