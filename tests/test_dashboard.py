"""The dashboard, run by Streamlit's AppTest against real databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from shelfwatch.services.demo import run_demo
from shelfwatch.settings import get_settings

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")


def _run() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    return at.run()


def test_empty_database_shows_guidance(home: Path) -> None:
    at = _run()
    assert not at.exception
    text = " ".join(e.value for e in at.error) + " ".join(i.value for i in at.info)
    assert "shelfwatch demo" in text


@pytest.fixture
def demo_home(home: Path) -> Path:
    run_demo(get_settings(), say=lambda _msg: None)
    return home


def test_overview_and_photo(demo_home: Path) -> None:
    at = _run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["S001 OSA", "S002 OSA"]
    assert all(m.value.endswith("%") for m in at.metric)
    frame = at.dataframe[0].value
    assert list(frame["store"]) == ["S001", "S002"] and frame["products"].min() > 0
    assert at.selectbox[0].options == ["S001", "S002"]
    # Switch the store and turn the masks off: the page re-renders without error.
    at.selectbox[0].select("S002").run()
    at.toggle[0].set_value(False).run()
    assert not at.exception
    assert len(at.toggle) == 4


def test_upload_page_shows_queue_status(demo_home: Path, rendered: Path) -> None:
    at = AppTest.from_file(str(Path(APP).parent / "pages" / "2_Upload.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert [m.label for m in at.metric][:2] == ["queued", "processing"]
    assert at.selectbox[0].options == ["S001", "S002"]
