"""Alembic from code: ``shelfwatch db upgrade`` and the migration tests use these."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError

import shelfwatch
from shelfwatch.core.errors import ShelfWatchError


def migrations_dir() -> Path:
    """``migrations/`` of a checkout, or the copy packed into an installed wheel."""
    package = Path(shelfwatch.__file__).resolve().parent
    for candidate in (package.parent / "migrations", package / "_migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("ShelfWatch's migrations folder is missing from this install")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    with _known_revisions():
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    with _known_revisions():
        command.downgrade(alembic_config(url), revision)


@contextlib.contextmanager
def _known_revisions() -> Iterator[None]:
    """Alembic's error for a revision it does not know, as one line naming the known ones."""
    try:
        yield
    except (CommandError, ResolutionError) as exc:
        script = ScriptDirectory.from_config(alembic_config(""))
        known = [s.revision for s in script.walk_revisions()]
        raise ShelfWatchError(
            f"{exc}; known revisions: {', '.join(sorted(known))} (or base, head)"
        ) from None


def current_revision(url: str) -> str | None:
    from shelfwatch.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
