"""A long viewer in a notebook: its page reaches the frame through a blob: URL, not srcdoc."""

import base64
import html
import re

import chromium
import pytest
import torch

from graphattn import patterns
from graphattn.plot import Viewer, show
from graphattn.plot.notebook import LOADER, LOADING, SIZER, SRCDOC_CHARS


def long_viewer():
    g = patterns.get("sliding_window", 4096, window=62, causal=False)  # 500,026 edges
    w = torch.rand(g.num_edges, 2, generator=torch.Generator().manual_seed(0))  # (E, 2)
    return show([(g, w)])


def test_short_pages_stay_in_srcdoc_and_long_ones_load_from_base64():
    short = Viewer("<p>hi</p>", "t")._repr_html_()
    assert short.startswith('<iframe srcdoc="&lt;p&gt;hi&lt;/p&gt;"')
    assert short.endswith(f"</iframe><script>{SIZER}</script>")  # no loader, only the sizer
    page = "<p>" + "é" * SRCDOC_CHARS + "</p>"
    frame = Viewer(page, "t")._repr_html_()
    assert frame.startswith(f'<iframe srcdoc="{html.escape(LOADING, quote=True)}"')
    block = r'<script type="application/octet-stream" class="graphattn-page">(.*?)</script>'
    data = re.search(block, frame).group(1)
    assert base64.b64decode(data).decode("utf-8") == page
    assert re.findall(r"<script>(.*?)</script>", frame) == [LOADER, SIZER]


@pytest.mark.browser
def test_a_long_viewer_opens_in_its_frame_without_any_request(tmp_path):
    driver = chromium.start(tmp_path / "profile")
    try:
        from selenium.webdriver.support.ui import WebDriverWait

        viewer = long_viewer()
        assert len(viewer.page) > SRCDOC_CHARS
        host = tmp_path / "notebook.html"
        host.write_text(f"<!DOCTYPE html><html><body>{viewer._repr_html_()}</body></html>")
        driver.get("about:blank")
        driver.get_log("performance")
        driver.get(host.resolve().as_uri())
        driver.switch_to.frame(0)
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')")
        )
        assert driver.execute_script("return location.protocol") == "blob:"
        assert "500,026 edges" in driver.find_element("css selector", ".ga-note").text
        urls = chromium.requested_urls(driver)
        assert all(u == host.resolve().as_uri() or u.startswith("blob:") for u in urls), urls
        assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    finally:
        driver.quit()
