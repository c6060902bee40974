"""The CSV exports of `shelfwatch export`, limited to the user's stores."""

from __future__ import annotations

import io

import streamlit as st

from shelfwatch.services.exports import EXPORTS, write_csv
from shelfwatch.webui import query_choice, start_page

ALL = "all my stores"

factory, scope = start_page("CSV exports")
st.caption(
    "The same files and columns as `shelfwatch export` (see the README). For millions of rows "
    "use the command, which streams to disk."
)

kind = st.selectbox("Export", list(EXPORTS))
store = query_choice("store", [ALL, *scope.stores], "Store")
c1, c2 = st.columns(2)
date_from = c1.date_input("From", value=None)
date_to = c2.date_input("To", value=None)
if date_from and date_to and date_from > date_to:
    st.error("'From' is after 'To'.")
    st.stop()
st.code(", ".join(EXPORTS[kind]), language=None)
if st.button("Prepare CSV"):
    buffer = io.StringIO()
    with factory() as session:
        rows = write_csv(
            session,
            kind,
            buffer,
            store=None if store == ALL else store,
            date_from=date_from,
            date_to=date_to,
            store_ids=scope.store_ids,
        )
    st.success(f"{rows} rows")
    st.download_button(
        f"Download {kind}.csv", buffer.getvalue(), file_name=f"{kind}.csv", mime="text/csv"
    )
