"""Headless Chromium for the browser tests (a plain helper module beside the tests).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps``)
and selenium (the ``browser`` extra); :func:`start` skips the calling test
with the reason when one is missing.
"""

import json
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


def start(profile_dir: Path):
    """A headless Chromium driver logging the console and the network, or a skip."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium or chromedriver is not installed (make browser-deps)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(60)
    return drv


def requested_urls(driver) -> list[str]:
    """The URLs of every request the page made, from the performance log (chrome:// left out).

    ``chrome://`` pages (the new tab page, loading late) come from the browser
    binary, not from a network.
    """
    urls = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in driver.get_log("performance")
        if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]
    return [u for u in urls if not u.startswith("chrome://")]
