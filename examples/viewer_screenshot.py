"""A picture of the offline viewer: a page opened in headless Chromium, one token selected.

    PYTHONPATH=. .venv/bin/python examples/viewer_screenshot.py \\
        docs/img/viewer.html docs/img/viewer.png --token it --layer 4

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser-deps``)
and selenium (the ``browser`` extra). The page makes no request; the PNG
is written atomically.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from graphattn._files import atomic_write

SELECT = """
var label = arguments[0], root = document.querySelector('.graphattn-viewer');
var layer = root.querySelector('.ga-layer');
layer.value = String(arguments[1]);
layer.dispatchEvent(new Event('change'));
var token = Array.from(root.querySelectorAll('.ga-token')).find(function (t) {
  return t.textContent === label; });
if (token) { token.dispatchEvent(new MouseEvent('click', {bubbles: true})); }
return Boolean(token);
"""


def screenshot(page: Path, out: Path, token: str, layer: int, size: tuple[int, int]) -> Path:
    """Open ``page``, show ``layer``, select the first token labelled ``token``, save ``out``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={size[0]},{size[1]}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')")
        )
        if not driver.execute_script(SELECT, token, layer):
            raise ValueError(f"token {token!r} is not drawn on layer {layer} of {page}")
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    return atomic_write(out, lambda tmp: tmp.write_bytes(png))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--token", default="it")
    parser.add_argument("--layer", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(1000, 600))
    args = parser.parse_args()
    print(screenshot(args.page, args.out, args.token, args.layer, tuple(args.size)))


if __name__ == "__main__":
    main()
