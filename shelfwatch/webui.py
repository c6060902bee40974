"""What every dashboard page shares: the database, login with session expiry, the user's scope.

Only the Streamlit pages in ``dashboards/`` import this; it composes services like the CLI does.
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import streamlit as st
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.db.engine import session_factory
from shelfwatch.db.models import User
from shelfwatch.services.users import LoginError, Scope, authenticate, scope_for
from shelfwatch.settings import get_settings

AUTH_KEY = "shelfwatch_auth"
MAX_UPLOAD_MB = 40  # per photo; `shelfwatch dashboard` gives the server the same limit


@st.cache_resource(show_spinner=False)
def _factory(url: str) -> sessionmaker[Session]:
    return session_factory(url)


def database() -> sessionmaker[Session]:
    """The session factory of the configured database (one engine per server process)."""
    return _factory(get_settings().resolved_database_url)


def _users_exist(factory: sessionmaker[Session]) -> bool:
    try:
        with factory() as session:
            return bool(session.scalar(select(func.count(User.id))))
    except SQLAlchemyError as exc:
        st.error(
            f"Cannot read the database ({type(exc).__name__}). Run `shelfwatch db upgrade` "
            "or `shelfwatch demo` first."
        )
        st.stop()


def _login_form(factory: sessionmaker[Session]) -> None:
    st.title("ShelfWatch")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        with factory() as session:
            try:
                name, error = authenticate(session, username, password).username, None
            except LoginError as exc:
                name, error = None, str(exc)
            session.commit()  # failed attempts count towards the lockout too
        if error:
            st.error(error)
        else:
            now = time.time()
            st.session_state[AUTH_KEY] = {"username": name, "login_at": now, "seen_at": now}
            st.rerun()
    st.stop()


def current_scope(factory: sessionmaker[Session]) -> Scope:
    """The logged-in user's scope; otherwise shows the login form and stops the page."""
    if not _users_exist(factory):
        st.title("ShelfWatch")
        st.info(
            "No dashboard users yet. Create one with `shelfwatch users add NAME --role admin`, "
            "or run `shelfwatch demo`, which creates a demo login."
        )
        st.stop()
    auth = st.session_state.get(AUTH_KEY)
    idle_limit = get_settings().session_idle_minutes * 60
    if auth and time.time() - auth["seen_at"] > idle_limit:
        del st.session_state[AUTH_KEY]
        st.warning("Your session expired; please log in again.")
        auth = None
    if not auth:
        _login_form(factory)
    try:
        with factory() as session:
            scope = scope_for(session, auth["username"])
    except LoginError as exc:
        del st.session_state[AUTH_KEY]
        st.error(str(exc))
        st.stop()
    auth["seen_at"] = time.time()
    with st.sidebar:
        st.caption(f"Signed in as **{scope.username}** ({scope.role})")
        if st.button("Log out"):
            del st.session_state[AUTH_KEY]
            st.rerun()
    if not scope.stores:
        st.info("Your account has no stores yet; ask an administrator.")
        st.stop()
    return scope


def start_page(title: str) -> tuple[sessionmaker[Session], Scope]:
    """Every page's first lines: page config, the database, the login, the title."""
    st.set_page_config(page_title=f"ShelfWatch - {title}", layout="wide")
    factory = database()
    scope = current_scope(factory)
    st.title(title)
    return factory, scope


def query_choice(
    name: str,
    options: list[str],
    label: str,
    labels: dict[str, str] | None = None,
    clears: tuple[str, ...] = (),
) -> str:
    """A selectbox that starts from the URL's ``?name=`` value and writes the choice back.

    A value in the URL that is not among ``options`` (another store, a typo) stops the page
    with a message: access is decided by ``options``, never by the URL.
    """
    wanted = st.query_params.get(name)
    if wanted is not None and wanted not in options:
        st.error(f"No access to {name} {wanted!r}, or it does not exist.")
        st.stop()
    index = options.index(wanted) if wanted in options else 0
    fmt = (lambda v: labels.get(v, v)) if labels else str

    def forget_dependants() -> None:  # e.g. a new store makes the old ?photo= meaningless
        for other in clears:
            st.query_params.pop(other, None)

    choice = st.selectbox(
        label,
        options,
        index=index,
        format_func=fmt,
        key=f"choice_{name}",
        on_change=forget_dependants,
    )
    st.query_params[name] = choice
    return choice


def stop_on(exc: Exception) -> None:
    """Show an expected error (no access, bad input) as a message and end the page run."""
    st.error(str(exc))
    st.stop()


def csv_download(frame: pd.DataFrame, name: str, label: str = "Download CSV") -> None:
    """A download button for the table on screen, as it is shown."""
    st.download_button(
        label, frame.to_csv(index=False), file_name=f"{name}.csv", mime="text/csv", key=name
    )


def parse_day(text: str | None, first: dt.date, last: dt.date) -> dt.date:
    """A ``?date=`` value clamped to the audited range; a bad one says so and uses ``last``."""
    if not text:
        return last
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        st.warning(f"Ignoring date {text!r} in the address: use YYYY-MM-DD.")
        return last
    if not first <= day <= last:
        st.warning(f"No audits on {day}; audits run from {first} to {last}.")
        return min(max(day, first), last)
    return day
