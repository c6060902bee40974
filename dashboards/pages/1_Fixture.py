"""A fixture's photo with its layers, and its planogram beside the realogram."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shelfwatch.services import reporting
from shelfwatch.settings import get_settings
from shelfwatch.webui import csv_download, query_choice, start_page, stop_on

factory, scope = start_page("Fixture and photo")

LAYOUT_COLUMNS = ["shelf", "position", "sku", "facings", "finding"]
wanted_photo = st.query_params.get("photo")
with factory() as session:
    if wanted_photo is not None:
        # A photo named in the address decides the store, if the user may see it.
        try:
            info = reporting.photo_info(session, scope, int(wanted_photo))
        except (ValueError, reporting.AccessDenied):
            stop_on(reporting.AccessDenied(f"No access to photo {wanted_photo!r}."))
        st.query_params["store"] = info["store"]
    store = query_choice("store", list(scope.stores), "Store", clears=("photo",))
    photos = reporting.recent_photos(session, scope, store)
    if wanted_photo is not None and int(wanted_photo) not in {p["id"] for p in photos}:
        photos.insert(0, info)
if not photos:
    st.info("No processed photos for this store yet.")
    st.stop()

labels = {str(p["id"]): f"{p['fixture']} - {p['captured_at']:%Y-%m-%d %H:%M}" for p in photos}
photo_id = int(query_choice("photo", list(labels), "Photo", labels))

c1, c2, c3, c4 = st.columns(4)
show_masks = c1.toggle("Product masks", value=True)
show_shelves = c2.toggle("Shelf lines", value=True)
show_gaps = c3.toggle("Gaps", value=True)
show_labels = c4.toggle("SKU labels", value=False)
with factory() as session:
    image, counts = reporting.photo_overlay(
        session,
        scope,
        photo_id,
        get_settings().photo_store(),
        show_masks,
        show_shelves,
        show_gaps,
        show_labels,
    )
    layout = reporting.plan_vs_real(session, scope, photo_id)
st.image(image, caption=f"{counts['products']} products, {counts['gaps']} gaps", width="stretch")
st.caption(f"Analysed by {layout['model']}.")


def _highlight(frame: pd.DataFrame) -> pd.io.formats.style.Styler:
    def row_style(row: pd.Series) -> list[str]:
        colour = "background-color: #f8d7da" if row["finding"] else ""
        return [colour] * len(row)

    return frame.style.apply(row_style, axis=1)


st.subheader("Planogram and realogram")
st.caption(
    f"Planogram in force: {layout['planogram'] or 'none'}; "
    f"{layout['findings']} findings in the latest audit of this photo (highlighted)."
)
sides = (
    ("planned", "**Planned** (shelf 1 = top)", "planogram"),
    ("observed", "**Seen** (runs of one SKU, left to right)", "realogram"),
)
for column, (key, heading, name) in zip(st.columns(2), sides, strict=True):
    with column:
        st.markdown(heading)
        frame = pd.DataFrame(
            layout[key], columns=["shelf", "position", "sku", "facings", "finding"]
        )
        st.dataframe(_highlight(frame), hide_index=True, width="stretch")
        csv_download(frame, f"{name}-photo-{photo_id}", f"Download {name} CSV")
