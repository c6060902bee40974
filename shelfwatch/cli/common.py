"""What every command shares: one-line errors, settings, database sessions."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.planogram.formats import ValidationError
from shelfwatch.settings import Settings, get_settings
from shelfwatch.vision.base import Segmenter

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become ``error: ...`` lines on stderr and exit status 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1) from None
        except (ShelfWatchError, BadInputError) as exc:
            raise fail(str(exc)) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def settings() -> Settings:
    return get_settings()


def database(ensure: bool = True, pre_ping: bool = True) -> sessionmaker[Session]:
    """Session factory for the configured database, migrated to head on first use."""
    from shelfwatch.db.engine import session_factory
    from shelfwatch.db.migrate import upgrade

    s = settings()
    s.ensure_dirs()
    url = s.resolved_database_url
    if ensure:
        _ensure_schema(url, upgrade)
    return session_factory(url, pre_ping)


@functools.lru_cache(maxsize=4)
def _ensure_schema(url: str, upgrade: Callable[[str], None]) -> None:
    """An empty database gets the schema; one at an older revision is never migrated behind
    the user's back (that is `shelfwatch db upgrade`, after a backup)."""
    from shelfwatch.db.migrate import current_revision, head_revision

    current, head = current_revision(url), head_revision(url)
    if current is None:
        upgrade(url)
    elif current != head:
        raise ShelfWatchError(
            f"the database is at schema revision {current}, this ShelfWatch needs {head}: "
            "back it up, then run `shelfwatch db upgrade`"
        )


def is_tty() -> bool:
    return sys.stderr.isatty()


def segmenter_for(backend: str | None, model: Path | None = None) -> Segmenter:
    """The backend by name (default: settings); ``model``: its weights instead of the
    configured ones (a ``shelfwatch train --out`` folder, or a transformers checkpoint)."""
    from shelfwatch.vision.registry import get_segmenter, segmenter_from

    name = backend or settings().backend
    if model is None:
        return get_segmenter(name)
    return segmenter_from(name, str(model))
