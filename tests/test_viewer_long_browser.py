"""The viewer at length in headless Chromium: draws what is in view, scrolls, says what it left out.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps``) and
selenium (the ``browser`` extra); skipped with the reason when one is missing.
"""

import chromium
import pytest
import torch

from graphattn import patterns
from graphattn.plot import to_html

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium.CHROMIUM is None, reason="chromium is not installed (make browser-deps)"
    ),
    pytest.mark.skipif(
        chromium.CHROMEDRIVER is None, reason="chromedriver is not installed (make browser-deps)"
    ),
]

SCROLL = """
var done = arguments[arguments.length - 1], canvas = document.querySelector('.ga-canvas');
canvas.scrollLeft = arguments[0] * canvas.scrollWidth;
var top = canvas.getBoundingClientRect().top + window.scrollY;
window.scrollTo(0, top + arguments[1] * (canvas.scrollHeight - window.innerHeight));
requestAnimationFrame(function () { requestAnimationFrame(function () { done(true); }); });
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    drv = chromium.start(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


def open_page(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "true"
    )


def count(driver, selector):
    return driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector)


def indices(driver, selector):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (e) { return Number(e.getAttribute('data-index')); });",
        selector,
    )


def click(driver, index, side="both"):
    driver.execute_script(
        "document.querySelector('.ga-token[data-side=\"' + arguments[1] + '\"][data-index=\"' +"
        " arguments[0] + '\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}));",
        index, side,
    )


def classes(driver, selector):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (e) { return e.getAttribute('class'); });",
        selector,
    )


def test_a_long_page_draws_the_tokens_in_view_and_more_on_scrolling(driver, tmp_path):
    g = patterns.get("sliding_window", 1200, window=12, causal=False)
    w = torch.rand(g.num_edges, 2, generator=torch.Generator().manual_seed(0))  # (E, 2)
    open_page(driver, to_html([(g, w)], tmp_path / "long.html"))
    # every edge and head is in the page; the 3 strongest per target are drawn near the view
    note = driver.find_element("css selector", ".ga-note").text
    assert f"3,600 of the {g.num_edges:,} edges in the page" in note and "omitted" not in note
    drawn = indices(driver, ".ga-token")
    assert drawn[0] == 0 and 40 < len(drawn) < 400
    assert driver.execute_async_script(SCROLL, 1.0, 0.0)
    drawn = indices(driver, ".ga-token")
    assert drawn[-1] == 1199 and 0 not in drawn
    click(driver, 1190)
    assert sum(c.endswith("ga-in") for c in classes(driver, ".ga-edge")) == 3
    assert "attends to" in driver.find_element("css selector", ".ga-info").text
    # every edge of both heads overlaid: unselected edges share at most 4 paths per head,
    # the selected token's edges are drawn singly above them
    driver.execute_script(
        "var s = document.querySelector('.ga-top'); s.value = 'all';"
        "s.dispatchEvent(new Event('change'));"
        "var h = document.querySelector('.ga-head'); h.value = 'all';"
        "h.dispatchEvent(new Event('change'));"
    )
    mask = g.to_dense_mask()
    mine = int(mask[1190].sum()) + int(mask[:, 1190].sum()) - int(mask[1190, 1190])
    assert 1 <= count(driver, ".ga-base") <= 8 and count(driver, ".ga-edge") == 2 * mine
    # the matrix of every edge: cells share one path per colour level, the focus's drawn singly
    driver.find_element("css selector", '.ga-views button[data-view="matrix"]').click()
    assert 1 <= count(driver, ".ga-cells") <= 33
    cells = classes(driver, ".ga-cell")
    assert sum(c.endswith("ga-in") for c in cells) == int(mask[1190].sum())
    assert sum(c.endswith("ga-out") for c in cells) == int(mask[:, 1190].sum()) - 1
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []


def test_a_pruned_recording_says_what_it_left_out_per_layer_and_per_token(driver, tmp_path):
    n = 20_000
    g = patterns.get("sliding_window", n, window=32, causal=True)
    gen = torch.Generator().manual_seed(1)
    layers = [(g, torch.rand(g.num_edges, 4, generator=gen)) for _ in range(2)]
    path = to_html(layers, tmp_path / "pruned.html", max_bytes=2 * 2**20)
    assert path.stat().st_size <= 2 * 2**20
    open_page(driver, path)
    note = driver.find_element("css selector", ".ga-note").text
    assert "strongest" in note and "of the weight mass" in note and "edges omitted" in note
    assert "the mean of 4 heads" in note
    assert count(driver, ".ga-token") < 400
    assert driver.execute_async_script(SCROLL, 0.5, 0.0)
    middle = indices(driver, ".ga-token")[len(indices(driver, ".ga-token")) // 2]
    click(driver, middle)
    info = driver.find_element("css selector", ".ga-info").text
    assert "% of its incoming weight" in info
    # the matrix draws the cells near the view only; scrolled to the end it reaches the last row
    driver.find_element("css selector", '.ga-views button[data-view="matrix"]').click()
    assert 0 < count(driver, ".ga-cell") < 20_000
    assert driver.execute_async_script(SCROLL, 1.0, 1.0)
    assert max(indices(driver, '.ga-token[data-side="dst"]')) > n - 4  # every 3rd label
    assert count(driver, f'.ga-cell[data-dst="{n - 1}"]') >= 1
    assert count(driver, '.ga-cell[data-dst="0"]') == 0  # far out of view: not drawn
    # the second layer is decoded when chosen and says what it left out of itself
    driver.execute_script(
        "var s = document.querySelector('.ga-layer'); s.value = '1';"
        "s.dispatchEvent(new Event('change'));"
    )
    assert "edges omitted" in driver.find_element("css selector", ".ga-note").text
    assert count(driver, ".ga-cell") > 0
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
