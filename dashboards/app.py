"""ShelfWatch store-manager dashboard (Streamlit).

Run with ``shelfwatch dashboard``. Reads the database named by ShelfWatch's settings.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shelfwatch.db.engine import session_factory
from shelfwatch.services import reporting
from shelfwatch.services.stores import list_stores
from shelfwatch.settings import get_settings

st.set_page_config(page_title="ShelfWatch", layout="wide")
settings = get_settings()
factory = session_factory(settings.resolved_database_url)

st.title("ShelfWatch")

try:
    with factory() as session:
        day = reporting.latest_audit_day(session)
        stores = [s.code for s in list_stores(session)]
        kpis = reporting.store_kpis(session, day) if day else []
except Exception as exc:  # noqa: BLE001 - an unmigrated or unreachable database
    st.error(
        f"Cannot read the database ({type(exc).__name__}). Run `shelfwatch db upgrade` "
        "or `shelfwatch demo` first."
    )
    st.stop()

if not day:
    st.info(
        "No audits yet. Run `shelfwatch demo` to load the sample data, or ingest photos "
        "and run `shelfwatch audit`."
    )
    st.stop()

st.subheader(f"Store KPIs, {day.isoformat()}")
table = pd.DataFrame(kpis).rename(
    columns={
        "osa_pct": "OSA %",
        "compliance_strict_pct": "Compliance strict %",
        "compliance_lenient_pct": "Compliance lenient %",
        "facings_compliance_pct": "Facings %",
        "open_findings": "Open findings",
    }
)
cols = st.columns(max(1, len(kpis)))
for col, row in zip(cols, kpis, strict=False):
    col.metric(
        f"{row['store']} OSA", f"{row['osa_pct']:.1f} %" if row["osa_pct"] is not None else "-"
    )
    col.caption(
        f"compliance {row['compliance_strict_pct']} % strict, "
        f"{row['products']} products, {row['gaps']} gaps"
    )
st.dataframe(table, hide_index=True, width="stretch")
st.download_button(
    "Download CSV", table.to_csv(index=False), file_name=f"kpis-{day}.csv", mime="text/csv"
)

st.subheader("Photo")
store = st.selectbox("Store", stores)
with factory() as session:
    photos = reporting.recent_photos(session, store) if store else []
if not photos:
    st.info("No processed photos for this store yet.")
    st.stop()
labels = {p["id"]: f"{p['fixture']} - {p['captured_at']:%Y-%m-%d %H:%M}" for p in photos}
photo_id = st.selectbox("Photo", list(labels), format_func=labels.get)
c1, c2, c3, c4 = st.columns(4)
show_masks = c1.toggle("Product masks", value=True)
show_shelves = c2.toggle("Shelf lines", value=True)
show_gaps = c3.toggle("Gaps", value=True)
show_labels = c4.toggle("SKU labels", value=False)
with factory() as session:
    image, counts = reporting.photo_overlay(
        session,
        photo_id,
        settings.resolved_storage_dir,
        show_masks,
        show_shelves,
        show_gaps,
        show_labels,
    )
st.image(image, caption=f"{counts['products']} products, {counts['gaps']} gaps", width="stretch")
