"""Dashboard users: hashing, roles and scopes, lockout, the `users` command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shelfwatch.cli import app
from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.db.engine import session_factory
from shelfwatch.db.models import User
from shelfwatch.services import users
from shelfwatch.settings import get_settings
from tests.conftest import PASSWORD


@pytest.fixture
def session(demo_home: Path) -> Session:
    with session_factory(get_settings().resolved_database_url)() as s:
        yield s


def test_passwords_are_argon2_hashes(session: Session) -> None:
    user = session.query(User).filter_by(username="anna").one()
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_scopes_by_role(session: Session) -> None:
    assert users.scope_for(session, "boss").stores == ("S001", "S002")
    assert users.scope_for(session, "anna").stores == ("S001",)
    assert users.scope_for(session, "bert").stores == ("S002",)
    assert users.scope_for(session, "nora").stores == ("S001",)  # region North
    users.set_active(session, "anna", False)
    with pytest.raises(users.LoginError):
        users.scope_for(session, "anna")


def test_lockout_after_repeated_failures_then_expiry(session: Session) -> None:
    t0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    for _ in range(users.MAX_FAILED_LOGINS - 1):
        with pytest.raises(users.LoginError, match="wrong username or password"):
            users.authenticate(session, "anna", "nope", now=t0)
    with pytest.raises(users.LoginError, match="locked"):
        users.authenticate(session, "anna", "nope", now=t0)
    with pytest.raises(users.LoginError, match="try again in 15 min"):
        users.authenticate(session, "anna", PASSWORD, now=t0 + dt.timedelta(seconds=1))
    later = t0 + users.LOCKOUT + dt.timedelta(seconds=1)
    assert users.authenticate(session, "anna", PASSWORD, now=later).username == "anna"
    assert session.query(User).filter_by(username="anna").one().last_login_at is not None


def test_success_resets_the_failure_count(session: Session) -> None:
    for _ in range(users.MAX_FAILED_LOGINS - 1):
        with pytest.raises(users.LoginError):
            users.authenticate(session, "anna", "nope")
    users.authenticate(session, "anna", PASSWORD)
    with pytest.raises(users.LoginError, match="wrong username"):
        users.authenticate(session, "anna", "nope")  # counting starts again: not locked


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--role", "boss"], "unknown role"),
        (["x", "--role", "manager"], "needs at least one --store"),
        (["x", "--role", "manager", "--store", "S404"], "unknown store 'S404'"),
        (["x", "--role", "regional"], "needs --region"),
        (["anna", "--role", "admin"], "already exists"),
    ],
)
def test_users_add_rejects_bad_input(
    demo_home: Path, cli: CliRunner, args: list[str], message: str
) -> None:
    result = cli.invoke(app, ["users", "add", *args, "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 1 and message in result.stderr


def test_users_cli_round_trip(demo_home: Path, cli: CliRunner) -> None:
    short = cli.invoke(
        app, ["users", "add", "eve", "--role", "admin", "--password-stdin"], input="abc\n"
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.stderr
    added = cli.invoke(
        app,
        ["users", "add", "carl", "--role", "manager", "--store", "S001", "--store", "S002"],
        input="long enough\nlong enough\n",
    )
    assert added.exit_code == 0, added.output
    listed = cli.invoke(app, ["users", "list"]).stdout.splitlines()
    assert "carl\tmanager\tS001, S002\tactive\t-" in listed
    assert cli.invoke(app, ["users", "disable", "carl"]).exit_code == 0
    assert "carl\tmanager\tS001, S002\tdisabled\t-" in cli.invoke(app, ["users", "list"]).stdout
    missing = cli.invoke(app, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "unknown user 'nobody'" in missing.stderr
    factory = session_factory(get_settings().resolved_database_url)
    with factory() as s, pytest.raises(users.LoginError, match="disabled"):
        users.authenticate(s, "carl", "long enough")
    assert cli.invoke(app, ["users", "enable", "carl"]).exit_code == 0
    passwd = cli.invoke(app, ["users", "passwd", "carl", "--password-stdin"], input="newer pass\n")
    assert passwd.exit_code == 0
    with factory() as s:
        assert users.authenticate(s, "carl", "newer pass").username == "carl"


def test_add_user_validation_is_shelfwatch_error(session: Session) -> None:
    with pytest.raises(ShelfWatchError, match="username must not be empty"):
        users.add_user(session, "  ", PASSWORD, "admin")
