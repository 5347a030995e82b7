"""examples/notebook.ipynb for real: run on an IPython kernel, converted, clicked in Chromium.

The kernel part needs the ``notebook`` extra (nbclient, ipykernel, nbconvert,
nbformat); the browser part also Debian's ``chromium`` and ``chromium-driver``
(``make browser-deps``) and selenium (the ``browser`` extra). Each part is
skipped with the reason when what it needs is missing.
"""

import html
import re
from pathlib import Path

import chromium
import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
nbconvert = pytest.importorskip("nbconvert", reason="the notebook extra is not installed")
pytest.importorskip("ipykernel", reason="the notebook extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed():
    """The example notebook, executed top to bottom on a fresh IPython kernel."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return nb


@pytest.fixture(scope="module")
def page(executed, tmp_path_factory):
    """The executed notebook as one HTML file (nbconvert's network-free "basic" template)."""
    body, _ = nbconvert.HTMLExporter(template_name="basic").from_notebook_node(executed)
    path = tmp_path_factory.mktemp("notebook") / "notebook.html"
    path.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>notebook</title></head><body>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def frames(executed):
    """The text/html outputs of the notebook that hold a viewer, in order."""
    out = []
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", output
            text = output.get("data", {}).get("text/html", "")
            if "graphattn-frame" in text:
                out.append(text)
    return out


def test_notebook_runs_and_shows_two_isolated_viewers(executed):
    shown = frames(executed)
    assert len(shown) == 2
    for frame in shown:
        page = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
        assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
        assert "<script" not in frame.split('srcdoc="')[0]
    svg = [o for c in executed.cells for o in c.get("outputs", [])
           if "image/svg+xml" in o.get("data", {})]
    assert len(svg) == 1 and "sliding_window" in svg[0]["data"]["image/svg+xml"]


def test_converted_notebook_holds_both_frames_and_no_remote_reference(page):
    text = page.read_text(encoding="utf-8")
    assert text.count('class="graphattn-frame"') == 2
    assert not re.search(r"(src|href)=\"(https?:)?//", text)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    drv = chromium.start(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


def viewer_state(driver):
    """Inside the current frame: what its viewer has selected and how many edges are lit."""
    return driver.execute_script(
        "var r = document.querySelector('.graphattn-viewer');"
        "return [r.getAttribute('data-ready'), r.getAttribute('data-selected'),"
        " r.querySelectorAll('.ga-edge.ga-in, .ga-edge.ga-out').length,"
        " r.querySelectorAll('.ga-token.ga-chosen').length];"
    )


@pytest.mark.browser
def test_click_in_the_second_viewer_changes_only_that_viewer(page, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = page.resolve().as_uri()
    driver.get("about:blank")
    driver.get_log("performance")  # drop the browser's own start-up entries
    driver.get(url)
    shown = driver.find_elements(By.CSS_SELECTOR, "iframe.graphattn-frame")
    assert len(shown) == 2
    for frame in shown:
        driver.switch_to.frame(frame)
        WebDriverWait(driver, 30).until(lambda d: viewer_state(d)[0] == "true")
        assert viewer_state(driver)[1:] == ["", 0, 0]
        driver.switch_to.default_content()

    driver.switch_to.frame(shown[1])
    token = driver.find_element(By.CSS_SELECTOR, '.ga-token[data-index="4"]')
    assert token.text == "the"
    token.click()
    _, selected, lit, chosen = viewer_state(driver)
    assert selected == "both:4" and lit > 0 and chosen == 1
    assert "attends to" in driver.find_element(By.CSS_SELECTOR, ".ga-info").text
    driver.switch_to.default_content()
    driver.switch_to.frame(shown[0])
    assert viewer_state(driver)[1:] == ["", 0, 0]  # the first viewer did not change
    driver.switch_to.default_content()

    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    page_requests = chromium.requested_urls(driver)
    assert page_requests
    assert all(u == url or u.startswith(("data:", "about:")) for u in page_requests), page_requests
