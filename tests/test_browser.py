"""The real dashboard in Debian's headless Chromium: log in, overview KPIs, a photo view.

Needs chromium and chromium-driver (``.ci/run`` installs them and sets
SHELFWATCH_REQUIRE_BROWSER=1, so in CI this test fails instead of skipping).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(demo_home: Path, tmp_path: Path) -> Iterator[str]:
    """``shelfwatch dashboard`` on loopback over the demo database; yields its URL."""
    port = _free_port()
    log = tmp_path / "dashboard.log"
    env = {**os.environ, "SHELFWATCH_HOME": str(demo_home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shelfwatch",
            "dashboard",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"the dashboard did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)


@pytest.fixture
def browser(tmp_path: Path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("SHELFWATCH_REQUIRE_BROWSER"):
            pytest.fail("chromium/chromedriver missing but SHELFWATCH_REQUIRE_BROWSER is set")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # This machine has no internet: keep Chromium from trying.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1800",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_login_overview_and_photo_in_chromium(dashboard: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(dashboard)
    user = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input[aria-label='Username']")))
    assert "S001" not in browser.find_element(By.TAG_NAME, "body").text  # nothing before login
    user.send_keys("anna")
    browser.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[.//p[text()='Log in']]").click()

    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "S001 OSA"))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Worst fixtures"))
    time.sleep(1)  # let the chart finish drawing for the screenshot
    overview = tmp_path / "overview.png"
    assert browser.save_screenshot(str(overview)) and overview.stat().st_size > 10_000
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Store KPIs" in body and "S001 OSA" in body and "%" in body
    assert "S002" not in body  # a manager of S001 sees nothing of S002

    # The sidebar link keeps the login (a new address would start a new session).
    nav = "a[data-testid='stSidebarNavLink'][href$='/Fixture']"
    browser.find_element(By.CSS_SELECTOR, nav).click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Planogram and realogram"))
    image = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stImage'] img"))
    )
    wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) > 0)
    photo = tmp_path / "photo.png"
    assert browser.save_screenshot(str(photo)) and photo.stat().st_size > 10_000

    # Upload through the browser: a file that is not an image gets a clear message.
    browser.find_element(By.CSS_SELECTOR, nav.replace("/Fixture", "/Upload")).click()
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type='file']")))
    fake = tmp_path / "shelf.jpg"
    fake.write_bytes(b"this is not a photo")
    upload.send_keys(str(fake))
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Ingest']]"))).click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "not an image"))
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    if os.environ.get("SHELFWATCH_SCREENSHOTS"):
        for shot in (overview, photo):
            shutil.copy(shot, Path(os.environ["SHELFWATCH_SCREENSHOTS"]) / shot.name)
