"""Benchmark of the offline viewer on a long recording: file size, load and click in Chromium.

Writes ``to_html`` (default options) for a synthetic recording: N = 32,768
tokens on a causal sliding window of 64 tokens (each token attends to
itself and the 63 before it: 2,095,136 edges per layer), 12 layers of 12
heads with random weights normalized per target (each layer its own), then
opens the page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, ``make browser-deps``) and measures the time until the
viewer is drawn (median of 3 opens), the time from a click on a token in
the middle of the sequence (scrolled there first) to its lasting selection
being drawn (arc view, then matrix view), the time to scroll there, and
the time to show the last layer (its arrays decoded on first use), and the
time until the same page framed as ``graphattn.plot.show`` frames it in a
notebook is drawn.
Prints the numbers and writes them, with the command that produced them, to
``benchmarks/results/viewer.json``. ``--n 4096 --window 62 --layers 2
--no-causal`` is the earlier long-sequence figure (500,026 edges).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_viewer.py
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from graphattn import patterns
from graphattn.graph import TokenGraph
from graphattn.plot import Viewer, to_html

RESULTS = Path(__file__).resolve().parent / "results" / "viewer.json"
NAVIGATION = "return performance.getEntriesByType('navigation')[0].loadEventEnd"
CLICK = """
var root = document.querySelector('.graphattn-viewer');
var shown = root.querySelectorAll('.ga-token');
var token = shown[Math.floor(shown.length / 2)];
var t0 = performance.now();
token.dispatchEvent(new MouseEvent('click', {bubbles: true}));
var selected = root.getAttribute('data-selected');
return [performance.now() - t0, selected];
"""
# scroll the drawing to its middle; resolves after the next frame, when it is drawn there
SCROLL = """
var done = arguments[arguments.length - 1], canvas = document.querySelector('.ga-canvas');
var t0 = performance.now();
canvas.scrollLeft = (canvas.scrollWidth - canvas.clientWidth) / 2;
var top = canvas.getBoundingClientRect().top + window.scrollY;
window.scrollTo(0, top + (canvas.scrollHeight - window.innerHeight) / 2);
requestAnimationFrame(function () { requestAnimationFrame(function () {
  done([performance.now() - t0, document.querySelectorAll('.ga-token').length]); }); });
"""
LAYER = """
var select = document.querySelector('.ga-layer'), t0 = performance.now();
select.value = String(select.options.length - 1);
select.dispatchEvent(new Event('change'));
return performance.now() - t0;
"""


def random_layers(graph: TokenGraph, num_layers: int, heads: int, seed: int):
    """``num_layers`` pairs ``(graph, weights (E, H))``, weights normalized per target."""
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(num_layers):
        s = torch.rand(graph.num_edges, heads, generator=gen) ** 4 + 1e-3  # (E, H)
        total = torch.zeros(graph.num_nodes, heads).index_add_(0, graph.dst, s)  # (N, H)
        layers.append((graph, s / total[graph.dst]))
    return layers


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if binary is None or not Path(driver).exists():
        sys.exit("chromium and chromedriver are needed (make browser-deps)")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def measure(path: Path, repeats: int = 3) -> dict:
    """Open (median of ``repeats``) and click times of the page at ``path`` in headless Chromium."""
    from selenium.webdriver.support.ui import WebDriverWait

    drv = chromium()
    try:
        drv.get("about:blank")  # the browser's own start-up is not the page's
        opens = []
        for _ in range(repeats):
            start = time.perf_counter()
            drv.get(path.resolve().as_uri())
            WebDriverWait(drv, 120).until(
                lambda d: d.execute_script("return document.body.getAttribute('data-ready')")
            )
            opens.append(time.perf_counter() - start)
        out = {
            "open_s": round(statistics.median(opens), 3),
            # navigation start to the end of the load event, the viewer drawn (in the page)
            "open_in_page_s": round(drv.execute_script(NAVIGATION) / 1000, 3),
        }
        for view in ("arc", "matrix"):
            drv.execute_script(
                f"document.querySelector('.ga-views button[data-view={view}]').click()"
            )
            scroll_ms, shown = drv.execute_async_script(SCROLL)
            out[f"scroll_{view}_ms"] = round(scroll_ms, 1)
            out[f"tokens_drawn_{view}"] = shown
            start = time.perf_counter()
            script_ms, selected = drv.execute_script(CLICK)
            drv.execute_script("return 0")  # the next round trip waits for the page's task
            out[f"click_{view}_s"] = round(time.perf_counter() - start, 3)
            out[f"click_{view}_script_ms"] = round(script_ms, 1)
            assert selected, f"no selection after the click in the {view} view"
        out["last_layer_script_ms"] = round(drv.execute_script(LAYER), 1)
        out["console_errors"] = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
        out["note"] = drv.execute_script("return document.querySelector('.ga-note').textContent")
        return out
    finally:
        drv.quit()


def measure_notebook(path: Path, repeats: int = 3) -> float:
    """Seconds (median of ``repeats``) until the page, framed as ``show`` frames it, is drawn.

    The frame is what :class:`graphattn.plot.Viewer` puts in a notebook
    (``show(layers)`` renders the same page), in a host page of its own.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    host = path.with_name("notebook.html")
    frame = Viewer(path.read_text(encoding="utf-8"), "viewer")._repr_html_()
    host.write_text(f"<!DOCTYPE html><html><body>{frame}</body></html>", encoding="utf-8")
    drv = chromium()
    try:
        drv.get("about:blank")
        opens = []
        for _ in range(repeats):
            start = time.perf_counter()
            drv.get(host.resolve().as_uri())
            drv.switch_to.frame(0)
            WebDriverWait(drv, 120).until(
                lambda d: d.execute_script("return document.body.getAttribute('data-ready')")
            )
            opens.append(time.perf_counter() - start)
            drv.switch_to.default_content()
        return round(statistics.median(opens), 3)
    finally:
        drv.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32_768)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--no-causal", dest="causal", action="store_false")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    graph = patterns.get("sliding_window", args.n, window=args.window, causal=args.causal)
    layers = random_layers(graph, args.layers, args.heads, seed=0)
    tokens = [f"tok{k}" for k in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = to_html(layers, Path(tmp) / "long.html", tokens=tokens)
        write = time.perf_counter() - start
        size = path.stat().st_size
        browser = measure(path)
        browser["notebook_open_s"] = measure_notebook(path)
    record = {
        "command": shlex.join(
            ["PYTHONPATH=.", ".venv/bin/python", "benchmarks/bench_viewer.py", *sys.argv[1:]]
        ),
        "machine": f"{platform.machine()}, {platform.python_version()}, torch {torch.__version__}",
        "n": args.n,
        "graph": graph.name,
        "edges": graph.num_edges,
        "layers": args.layers,
        "heads": args.heads,
        "write_s": round(write, 3),
        "file_mb": round(size / 2**20, 2),
        **browser,
    }
    print(json.dumps(record, indent=1))
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
