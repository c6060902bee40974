"""Findings worklist: what to fix first, marked fixed or acknowledged by the manager."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shelfwatch.db.models import FindingStatus
from shelfwatch.services import reporting
from shelfwatch.webui import csv_download, query_choice, start_page, stop_on

ALL = "all my stores"

factory, scope = start_page("Findings worklist")
st.caption(
    "Findings of each store's latest audit, largest impact first. Mark a finding fixed when "
    "it is done: the next audit of the fixture confirms it or reopens it."
)

with factory() as session:
    _, last = reporting.audit_day_range(session, scope)
if last is None:
    st.info("No audits yet.")
    st.stop()

left, right = st.columns(2)
with left:
    store = query_choice("store", [ALL, *scope.stores], "Store")
with right:
    statuses = st.multiselect(
        "Status",
        [s.value for s in FindingStatus],
        default=list(reporting.ACTIONABLE),
    )
one_store = None if store == ALL else store


def load() -> list[dict[str, object]]:
    with factory() as session:
        return reporting.worklist(session, scope, last, one_store, tuple(statuses))


rows = load()
if rows:
    labels = {
        r["finding_id"]: (
            f"#{r['finding_id']} {r['store']} {r['fixture']} shelf {r['shelf']}"
            f" pos {r['position'] or '-'}: {r['type']}"
            f" {r['expected_sku'] or r['observed_sku'] or ''} [{r['status']}]"
        )
        for r in rows
    }
    chosen = st.selectbox("Finding", list(labels), format_func=labels.get)
    b1, b2, b3 = st.columns(3)
    action = None
    if b1.button("Mark fixed", width="stretch"):
        action = FindingStatus.fixed.value
    if b2.button("Acknowledge", width="stretch"):
        action = FindingStatus.acknowledged.value
    if b3.button("Reopen", width="stretch"):
        action = FindingStatus.open.value
    if action:
        try:
            with factory.begin() as session:
                reporting.mark_finding(session, scope, int(chosen), action)
        except reporting.AccessDenied as exc:
            stop_on(exc)
        st.success(f"Finding #{chosen} marked {action} by {scope.username}.")
        rows = load()

frame = pd.DataFrame(rows)
if frame.empty:
    st.info("Nothing to do: no findings with these statuses.")
else:
    st.dataframe(frame, hide_index=True, width="stretch")
    csv_download(frame, f"findings-{last}")
