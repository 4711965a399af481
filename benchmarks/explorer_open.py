"""How fast the explorer opens a 10,000-node graph in headless Chromium (issue 17: under 2 s, the
file under 5 MB).

Writes the graph of ``tests/test_explorer.py``'s ``chain_graph(10_000)`` with ``sg.plot`` to an
HTML file, then, in a fresh page each round, measures the milliseconds from the navigation to the
first frame painted with the graph in it (the page's own clock), and the seconds from the
navigation until a click on a node has filled the details panel (Python's clock, Playwright's
round trips included). Medians over the rounds.

Needs Playwright (``pip install -e ".[browser]"``) and a Chromium (Debian: ``apt-get install
chromium``, or ``SYMGRAPH_CHROMIUM=/path/to/chromium``).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/explorer_open.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _timing import machine

import symgraph as sg

ROOT = Path(__file__).resolve().parent.parent
PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def chromium() -> str:
    found = os.environ.get("SYMGRAPH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("explorer_open.py needs Chromium: apt-get install chromium, or set SYMGRAPH_CHROMIUM")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit('explorer_open.py needs Playwright: pip install -e ".[browser]"')
    sys.path.insert(0, str(ROOT / "tests"))
    from test_explorer import chain_graph

    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = sg.plot(chain_graph(args.nodes), Path(folder) / "large.html")
        written = time.perf_counter() - started
        size = path.stat().st_size
        painted, answered = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=ARGS)
            for _ in range(args.rounds):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto("about:blank")  # the browser's own start is not the page's
                started = time.perf_counter()
                page.goto(path.as_uri())
                page.wait_for_selector("html[data-sg-ready]", timeout=60_000)
                painted.append(page.evaluate(PAINTED) / 1000)
                page.locator("[data-sg-node]").first.click()
                page.wait_for_selector("[data-sg-details].sg-filled")
                answered.append(time.perf_counter() - started)
                page.close()
            browser.close()
    print(f"{args.nodes:,} nodes: sg.plot wrote {size / 1e6:.2f} MB (target < 5 MB) in {written:.2f} s")
    print(f"  painted {statistics.median(painted):.2f} s after the navigation (median of {args.rounds}; target < 2 s)")
    print(f"  a click on a node answered {statistics.median(answered):.2f} s after the navigation")


if __name__ == "__main__":
    main()
