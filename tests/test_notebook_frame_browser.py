"""The notebook frame fits its viewer: no blank space below it, no scrollbar inside it."""

from __future__ import annotations

import chromium
import pytest
import torch

from graphattn import patterns
from graphattn.plot import show

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    drv = chromium.start(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


@pytest.mark.parametrize("n", [4, 24])
def test_the_frame_takes_the_height_of_the_page_inside(driver, tmp_path, n):
    from selenium.webdriver.support.ui import WebDriverWait

    g = patterns.sliding_window(n, 2).with_tokens([f"tok{k}" for k in range(n)])
    viewer = show([(g, torch.rand(g.num_edges, 2, generator=torch.Generator().manual_seed(n)))])
    cell = tmp_path / "cell.html"  # a notebook output cell, 900 px wide
    cell.write_text(f'<!DOCTYPE html><html><body style="width: 900px">{viewer._repr_html_()}'
                    "</body></html>", encoding="utf-8")
    driver.get(cell.resolve().as_uri())
    frame = driver.find_element("css selector", "iframe")
    driver.switch_to.frame(frame)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "true"
    )
    inner = driver.execute_script(
        "var b = document.body, s = getComputedStyle(b);"
        "return {bottom: b.getBoundingClientRect().bottom + parseFloat(s.marginBottom),"
        " scrollW: document.documentElement.scrollWidth,"
        " clientW: document.documentElement.clientWidth};"
    )
    driver.switch_to.default_content()

    def fitted(d):
        h = d.execute_script("return document.querySelector('iframe').clientHeight")
        return abs(h - inner["bottom"]) <= 2 and h

    assert WebDriverWait(driver, 10).until(fitted)  # no blank space, no inner vertical scroll
    assert inner["scrollW"] <= inner["clientW"]  # no horizontal scrollbar
