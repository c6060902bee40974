"""Upload photos through the same ingest path as `shelfwatch ingest`, and see the queue."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.services.ingest import ingest_paths
from shelfwatch.services.status import queue_status
from shelfwatch.services.stores import list_fixtures
from shelfwatch.settings import get_settings
from shelfwatch.webui import MAX_UPLOAD_MB, csv_download, query_choice, start_page

factory, scope = start_page("Upload shelf photos")

with factory() as session:
    fixtures = [(s.code, f.code) for s, f in list_fixtures(session) if scope.allows(s.id)]
    status = queue_status(session, store_ids=scope.store_ids)

if not fixtures:
    st.info("Your stores have no fixtures yet: add them with `shelfwatch fixtures add`.")
else:
    store = query_choice("store", sorted({s for s, _ in fixtures}), "Store")
    fixture = st.selectbox("Fixture", [f for s, f in fixtures if s == store])
    files = st.file_uploader(
        "Photos",
        type=["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp"],
        accept_multiple_files=True,
    )
    if files and st.button("Ingest"):
        with tempfile.TemporaryDirectory() as tmp:
            paths, too_big = [], []
            for f in files:
                if f.size > MAX_UPLOAD_MB * 1024 * 1024:
                    too_big.append(f.name)
                    continue
                path = Path(tmp) / Path(f.name).name
                path.write_bytes(f.getvalue())
                paths.append(path)
            try:
                report = ingest_paths(factory, paths, store, fixture, get_settings().photo_store())
            except ShelfWatchError as exc:
                st.error(str(exc))
                st.stop()
        st.success(f"{len(report.added)} ingested, {len(report.duplicates)} already there")
        for name in too_big:
            st.error(f"{name}: larger than {MAX_UPLOAD_MB} MB")
        for path, reason in report.rejected:
            st.error(f"{Path(path).name}: {reason}")

st.subheader("Processing status (your stores)")
cols = st.columns(len(status["photos"]))
for col, (state, count) in zip(cols, status["photos"].items(), strict=True):
    col.metric(state, count)
alive = [w for w in status["workers"] if w["alive"]]
if alive:
    st.caption(
        f"{len(alive)} worker(s) processing: "
        + ", ".join(f"{w['name']} ({w['done']} done)" for w in alive)
    )
else:
    st.warning(
        "No worker is running: uploaded photos wait in the queue. Start one with "
        "`shelfwatch worker` (`shelfwatch dashboard` starts one unless `--no-worker`)."
    )
if status["stalled"]:
    st.warning(f"{len(status['stalled'])} photo(s) stalled on a stopped worker: retaken soon.")
if status["errors"]:
    st.subheader("Failed and quarantined photos")
    errors = pd.DataFrame(status["errors"])
    st.dataframe(errors, hide_index=True, width="stretch")
    csv_download(errors, "failed-photos")
    if scope.role == "admin" and st.button("Retry failed and quarantined photos"):
        from shelfwatch.services.worker import requeue

        ids = [int(e["photo_id"]) for e in status["errors"]]
        st.success(f"{requeue(factory, ids)} photo(s) queued again")
