"""``shelfwatch users``: dashboard logins."""

from __future__ import annotations

import sys

import typer

from shelfwatch.cli.common import database, fail, friendly_errors
from shelfwatch.services import users as user_service

users_app = typer.Typer(help="Dashboard users and their stores.", no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    """From stdin (one line, for scripts) or asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat password", hide_input=True) != first:
        raise fail("the passwords differ")
    return first


@users_app.command("add")
@friendly_errors
def users_add(
    username: str = typer.Argument(..., help="Login name, unique."),
    role: str = typer.Option(..., "--role", help="manager, regional or admin."),
    store: list[str] = typer.Option(  # noqa: B008 - typer's way of declaring a list option
        None, "--store", help="Store code a manager may see (repeat for several)."
    ),
    region: str = typer.Option(None, "--region", help="Region a regional user may see."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin instead of asking."
    ),
) -> None:
    """Add a dashboard user; the password is stored as an Argon2id hash."""
    password = _password(password_stdin)
    with database().begin() as session:
        user = user_service.add_user(session, username, password, role, store or [], region)
        typer.echo(f"added {user.role} {user.username} ({user_service.describe(user)})")


@users_app.command("list")
@friendly_errors
def users_list() -> None:
    """List users: name, role, what they see, active or disabled, last login."""
    with database()() as session:
        for u in user_service.list_users(session):
            state = "active" if u.active else "disabled"
            last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "-"
            typer.echo(f"{u.username}\t{u.role}\t{user_service.describe(u)}\t{state}\t{last}")


@users_app.command("disable")
@friendly_errors
def users_disable(username: str = typer.Argument(...)) -> None:
    """Disable a login (takes effect on the user's next page load)."""
    with database().begin() as session:
        user_service.set_active(session, username, False)
    typer.echo(f"disabled {username}")


@users_app.command("enable")
@friendly_errors
def users_enable(username: str = typer.Argument(...)) -> None:
    """Enable a login again (also clears a lockout)."""
    with database().begin() as session:
        user_service.set_active(session, username, True)
    typer.echo(f"enabled {username}")


@users_app.command("passwd")
@friendly_errors
def users_passwd(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin."),
) -> None:
    """Set a new password (also clears a lockout)."""
    password = _password(password_stdin)
    with database().begin() as session:
        user_service.set_password(session, username, password)
    typer.echo(f"password of {username} changed")
