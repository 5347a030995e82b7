"""The offline viewer in a real headless Chromium: loads clean, makes no request, reacts to clicks.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps``) and
selenium (the ``browser`` extra); skipped with the reason when one is missing.
"""


import chromium
import pytest
import torch

from graphattn import graph_attention, patterns
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

TOKENS = "the cat sat on the mat because it was warm".split()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A viewer of two self layers (sparse BigBird, 3 heads) and one cross layer."""
    torch.manual_seed(0)
    g = patterns.get("bigbird", len(TOKENS), window=3, num_global=1, num_random=1)
    layers = []
    for _ in range(2):
        x = torch.randn(len(TOKENS), 3, 8)
        layers.append((g, graph_attention(x, x, x, g, return_weights=True)[1]))
    cross = patterns.cross(4, len(TOKENS))
    q, k = torch.randn(4, 2, 8), torch.randn(len(TOKENS), 2, 8)
    layers.append((cross, graph_attention(q, k, k, cross, return_weights=True)[1]))
    path = tmp_path_factory.mktemp("viewer") / "attention.html"
    return to_html(layers, path, tokens=None, src_tokens=TOKENS), g


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    drv = chromium.start(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


def classes(driver, selector):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (e) { return e.getAttribute('class'); });",
        selector,
    )


def test_viewer_loads_offline_reacts_and_screenshots(page, driver, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    path, g = page
    url = path.resolve().as_uri()
    driver.get("about:blank")
    driver.get_log("performance")  # drop the browser's own start-up (new tab page) entries
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "true"
    )
    # no console message of any level above info (errors, CSP violations, warnings)
    logs = driver.get_log("browser")
    assert [e for e in logs if e["level"] in ("SEVERE", "WARNING")] == []
    # no network: no resource entry, and the only request the browser made was the page itself
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    page_requests = chromium.requested_urls(driver)
    assert page_requests
    assert all(u == url or u.startswith("data:") for u in page_requests), page_requests

    # arc view of layer 0, all 3 heads, every edge: one drawn edge per graph edge and head
    assert driver.find_element(By.CSS_SELECTOR, ".ga-svg").get_attribute("data-view") == "arc"
    Select(driver.find_element(By.CSS_SELECTOR, ".ga-head")).select_by_value("all")
    Select(driver.find_element(By.CSS_SELECTOR, ".ga-top")).select_by_value("all")
    assert len(driver.find_elements(By.CSS_SELECTOR, ".ga-edge")) == 3 * g.num_edges
    assert not any(" " in c for c in classes(driver, ".ga-edge"))  # nothing highlighted yet

    # hovering highlights a token's edges, leaving it clears them again
    hovered = driver.find_element(By.CSS_SELECTOR, '.ga-token[data-index="2"]')
    ActionChains(driver).move_to_element(hovered).perform()
    assert sum(c.endswith("ga-in") for c in classes(driver, ".ga-edge")) == 3 * int(
        g.to_dense_mask()[2].sum()
    )
    ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()
    assert not any(" " in c for c in classes(driver, ".ga-edge"))

    token = driver.find_element(By.CSS_SELECTOR, '.ga-token[data-index="5"]')
    token.click()
    assert "ga-selected" in token.get_attribute("class")
    edge_classes = classes(driver, ".ga-edge")
    incoming = sum(c.endswith("ga-in") for c in edge_classes)
    outgoing = sum(c.endswith("ga-out") for c in edge_classes)
    mask = g.to_dense_mask()
    assert incoming == 3 * int(mask[5].sum())  # every head's edges j -> 5
    assert outgoing == 3 * (int(mask[:, 5].sum()) - int(mask[5, 5]))  # edges 5 -> i, i != 5
    plain = sum(c == "ga-edge" for c in edge_classes)  # dimmed by their group's ga-focus
    assert plain == len(edge_classes) - incoming - outgoing
    assert classes(driver, ".ga-items") == ["ga-items ga-focus"]
    opacity = "return getComputedStyle(document.querySelector(arguments[0])).opacity"
    assert float(driver.execute_script(opacity, "path.ga-edge:not(.ga-in):not(.ga-out)")) < 0.1
    assert float(driver.execute_script(opacity, "path.ga-edge.ga-in")) == 1
    assert "attends to" in driver.find_element(By.CSS_SELECTOR, ".ga-info").text

    # one head, matrix view: one cell per edge, the same token still highlights its row
    Select(driver.find_element(By.CSS_SELECTOR, ".ga-head")).select_by_value("1")
    driver.find_element(By.CSS_SELECTOR, '.ga-views button[data-view="matrix"]').click()
    assert driver.find_element(By.CSS_SELECTOR, ".ga-svg").get_attribute("data-view") == "matrix"
    assert len(driver.find_elements(By.CSS_SELECTOR, ".ga-cell")) == g.num_edges
    assert sum(c.endswith("ga-in") for c in classes(driver, ".ga-cell")) == int(mask[5].sum())

    # the cross layer: bipartite, arc disabled, a source token highlights its outgoing edges
    Select(driver.find_element(By.CSS_SELECTOR, ".ga-layer")).select_by_value("2")
    driver.find_element(By.CSS_SELECTOR, '.ga-views button[data-view="bipartite"]').click()
    assert driver.find_element(
        By.CSS_SELECTOR, '.ga-views button[data-view="arc"]'
    ).get_attribute("disabled")
    source = driver.find_element(By.CSS_SELECTOR, '.ga-token[data-side="src"][data-index="1"]')
    assert source.text == "cat"
    source.click()
    edge_classes = classes(driver, ".ga-edge")
    assert sum(c.endswith("ga-out") for c in edge_classes) == 4  # to each of the 4 targets
    assert sum(c.endswith("ga-in") for c in edge_classes) == 0

    shot = tmp_path / "viewer.png"
    assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []

