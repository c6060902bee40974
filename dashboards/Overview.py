"""ShelfWatch dashboard: overview of the user's stores (run with ``shelfwatch dashboard``)."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from shelfwatch.services import reporting
from shelfwatch.webui import csv_download, parse_day, query_choice, start_page

ALL = "all my stores"
TREND_WEEKS = 12

factory, scope = start_page("ShelfWatch overview")

with factory() as session:
    first, last = reporting.audit_day_range(session, scope)
if last is None or first is None:
    st.info(
        "No audits yet. Run `shelfwatch demo` to load the sample data, or ingest photos "
        "and run `shelfwatch audit`."
    )
    st.stop()

left, right = st.columns(2)
with left:
    store = query_choice("store", [ALL, *scope.stores], "Store")
with right:
    day = st.date_input(
        "Audit day",
        value=parse_day(st.query_params.get("date"), first, last),
        min_value=first,
        max_value=last,
    )
st.query_params["date"] = day.isoformat()
one_store = None if store == ALL else store

with factory() as session:
    kpis = reporting.store_kpis(session, day, scope)
    trend = reporting.kpi_trend(
        session, scope, day - dt.timedelta(weeks=TREND_WEEKS), day, one_store
    )
    worst = reporting.worst_fixtures(session, scope, day)
if one_store:
    kpis = [k for k in kpis if k["store"] == one_store]
    worst = [w for w in worst if w["store"] == one_store]


def _delta(now: object, before: object) -> float | None:
    if now is None or before is None:
        return None
    return round(float(now) - float(before), 1)  # type: ignore[arg-type]


st.subheader(f"Store KPIs, {day.isoformat()}")
if not kpis:
    st.info(f"No audit on {day} for {store}.")
elif len(kpis) <= 6:
    for col, row in zip(st.columns(len(kpis)), kpis, strict=True):
        osa = row["osa_pct"]
        col.metric(
            f"{row['store']} OSA",
            "-" if osa is None else f"{osa:.1f} %",
            delta=_delta(osa, row["previous_osa_pct"]),
        )
        col.caption(
            f"compliance {row['compliance_strict_pct']} % strict, "
            f"{row['products']} products, {row['gaps']} gaps"
        )
else:
    frame = pd.DataFrame(kpis)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Stores audited", len(kpis))
    c2.metric("Mean OSA", f"{frame['osa_pct'].mean():.1f} %")
    c3.metric("Mean compliance (strict)", f"{frame['compliance_strict_pct'].mean():.1f} %")
    c4.metric("Gaps", int(frame["gaps"].sum()))

if kpis:
    table = pd.DataFrame(kpis)
    table["osa_change"] = [_delta(r["osa_pct"], r["previous_osa_pct"]) for r in kpis]
    table["compliance_change"] = [
        _delta(r["compliance_strict_pct"], r["previous_compliance_strict_pct"]) for r in kpis
    ]
    table["gaps_change"] = [_delta(r["gaps"], r["previous_gaps"]) for r in kpis]
    table = table.drop(
        columns=["previous_osa_pct", "previous_compliance_strict_pct", "previous_gaps"]
    )
    st.caption("Change columns compare with each store's previous audit (`previous_audit`).")
    st.dataframe(table, hide_index=True, width="stretch")
    csv_download(table, f"kpis-{day}")

st.subheader(f"Trend, last {TREND_WEEKS} weeks (weekly means)")
if trend:
    weekly = (
        pd.DataFrame(trend)
        .assign(day=lambda f: pd.to_datetime(f["day"]))
        .set_index("day")[["osa_pct", "compliance_strict_pct", "gaps"]]
        .resample("W-MON", label="left", closed="left")
        .mean()
        .round(2)
    )
    weekly = weekly.reset_index().rename(columns={"day": "week_of"})
    long = weekly.melt("week_of", ["osa_pct", "compliance_strict_pct"], "kpi", "percent")
    chart = (
        alt.Chart(long)
        .mark_line(point=True)  # points: a store with one audited week still shows
        .encode(x="week_of:T", y=alt.Y("percent:Q", scale=alt.Scale(zero=False)), color="kpi:N")
    )
    st.altair_chart(chart, width="stretch")
    csv_download(weekly, f"trend-{day}", "Download trend CSV")
else:
    st.info("No audits in this period.")

st.subheader("Photos to retake (last 7 days)")
with factory() as session:
    since = dt.datetime.combine(day - dt.timedelta(days=6), dt.time(0), tzinfo=dt.UTC)
    retakes = [
        r
        for r in reporting.retakes(session, scope, since)
        if one_store is None or r["store"] == one_store
    ]
if retakes:
    st.caption("Left out of audits and KPIs by the quality gate: photograph these again.")
    retake_frame = pd.DataFrame(retakes)
    st.dataframe(retake_frame, hide_index=True, width="stretch")
    csv_download(retake_frame, f"retakes-{day}", "Download retakes CSV")
else:
    st.info("No photo to retake.")

st.subheader("Worst fixtures (open findings by impact)")
if worst:
    worst_frame = pd.DataFrame(worst)
    st.dataframe(worst_frame, hide_index=True, width="stretch")
    csv_download(worst_frame, f"worst-fixtures-{day}", "Download worst fixtures CSV")
else:
    st.info("No open findings on this day.")
