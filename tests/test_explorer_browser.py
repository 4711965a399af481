"""The explorer in a real browser: headless Chromium driven by Playwright.

Needs Playwright (``pip install -e ".[browser]"``) and a Chromium (Debian/Ubuntu: ``apt-get
install chromium``; Playwright's own browser download is not used). Without them these tests skip,
saying what to install; ``.ci/browser-tests`` installs both and runs them. Set
``SYMGRAPH_EXPLORER_SCREENSHOT=docs/explorer.png`` to write the README's screenshot.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_explorer import chain_graph

import symgraph as sg
from symgraph import viz

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL = (
    "install Playwright (pip install -e '.[browser]') and Chromium (Debian/Ubuntu: apt-get install chromium), "
    "or set SYMGRAPH_CHROMIUM to a Chromium executable; .ci/browser-tests does both"
)


def _chromium() -> str | None:
    found = os.environ.get("SYMGRAPH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.path.exists(found) else None


if importlib.util.find_spec("playwright") is None:
    pytest.skip(f"the explorer's browser tests need Playwright: {INSTALL}", allow_module_level=True)
if _chromium() is None:
    pytest.skip(f"the explorer's browser tests need Chromium: {INSTALL}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A page that records console errors and uncaught exceptions in ``page.problems``."""
    opened = browser.new_page(viewport={"width": 1400, "height": 900})
    opened.problems = []
    opened.on("console", lambda message: opened.problems.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: opened.problems.append(str(error)))
    yield opened
    opened.close()


def open_explorer(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-sg-ready]", timeout=30_000)
    return page


def adam_mlp():
    rng = np.random.default_rng(0)
    x, t = sg.tensor("x", shape=(None, 4)), sg.ivector("t")
    W1 = sg.shared(rng.normal(size=(4, 5)), name="W1", shape=(4, 5))
    W2 = sg.shared(rng.normal(size=(5, 3)), name="W2")
    hidden = sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.5)  # the line the details must show
    probabilities = sg.nn.softmax(hidden @ W2)
    cost = sg.nn.categorical_crossentropy(probabilities, t).mean()
    train = sg.function([x, t], cost, updates=sg.optim.adam(cost, [W1, W2]), phase="train", name="train")
    predict = sg.function([x], probabilities, phase="predict", name="predict")
    return train, predict


def drawn(page, scope="body"):
    return page.locator(f"{scope} [data-sg-node]").count()


def group_key(function, name):
    (key,) = [key for key, info in sg.to_networkx(function).graph["groups"].items() if info["name"] == name]
    return key


def top_centre(page, selector):
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"]


# --- one graph ------------------------------------------------------------------------------------------------
def test_the_page_opens_without_errors_with_every_group_closed(page, tmp_path):
    train, _ = adam_mlp()
    open_explorer(page, sg.plot(train, tmp_path / "train.html"))
    folded = viz.drawable(train)
    assert drawn(page) == folded.number_of_nodes()
    boxes = [key for key, data in folded.nodes(data=True) if data.get("collapsed")]
    assert page.locator("[data-sg-node][data-sg-group]").count() == len(boxes) > 5
    kinds = {element.get_attribute("data-sg-kind") for element in page.locator("[data-sg-node]").all()}
    assert {"op", "input", "shared", "output"} <= kinds
    assert page.locator('[data-sg-node][data-sg-op="adam W1"]').count() == 1
    assert page.problems == []


def test_a_click_on_a_group_opens_it_in_place_and_its_title_closes_it(page, tmp_path):
    train, _ = adam_mlp()
    open_explorer(page, sg.plot(train, tmp_path / "train.html"))
    key = group_key(train, "adam W1")
    box = f'[data-sg-node="{key}"]'
    before = drawn(page)
    where = top_centre(page, box)
    page.click(box)
    expanded = viz.drawable(train, expand=["adam W1"]).number_of_nodes()
    page.wait_for_function(f"document.querySelectorAll('[data-sg-node]').length === {expanded}")
    assert expanded > before
    frame = f'.sg-frame[data-sg-group="{key}"]'
    assert page.locator(frame).count() == 1 and page.locator(box).count() == 0
    assert page.locator('[data-sg-node][data-sg-op="sqrt"]').count() == 1  # Adam's step, now in sight
    page.wait_for_timeout(400)  # the other nodes glide to their places
    after = top_centre(page, f"{frame} .sg-frame-box")
    assert abs(after[0] - where[0]) < 2 and abs(after[1] - where[1]) < 2  # the group stayed put
    assert "group of 13 ops" in page.inner_text("[data-sg-details]")
    page.click(f"{frame} .sg-frame-head")
    page.wait_for_function(f"document.querySelectorAll('[data-sg-node]').length === {before}")
    assert page.locator(box).count() == 1 and page.problems == []


def test_a_click_on_a_node_shows_its_op_type_and_source_line(page, tmp_path):
    train, _ = adam_mlp()
    open_explorer(page, sg.plot(train, tmp_path / "train.html"))
    page.click('[data-sg-node][data-sg-op="relu"]')
    details = page.inner_text("[data-sg-details]")
    line = next(
        n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "the line the details" in text
    )
    assert "relu" in details and "float64" in details and "(?, 5)" in details
    assert f"test_explorer_browser.py:{line}" in details and "sg.nn.dropout(sg.nn.relu(x @ W1), rate=0.5)" in details
    full = page.get_attribute("[data-sg-details] .sg-source", "title")  # the whole path on hover
    assert full.startswith(str(Path(__file__).parent)) and full.endswith("rate=0.5)  # the line the details must show")
    assert "gradient" in details and "no" in details
    page.click('[data-sg-node][data-sg-kind="input"] >> nth=0')
    assert "input" in page.inner_text("[data-sg-details]")
    assert page.problems == []


def test_search_highlights_matches_and_the_groups_hiding_them(page, tmp_path):
    train, _ = adam_mlp()
    open_explorer(page, sg.plot(train, tmp_path / "train.html"))
    page.fill("input[type=search]", "relu")
    matches = page.locator(".sg-match")
    assert matches.count() == 1 and matches.get_attribute("data-sg-op") == "relu"
    page.fill("input[type=search]", "sqrt")  # only inside Adam's groups, which are closed
    inside = {element.get_attribute("data-sg-op") for element in page.locator(".sg-match-inside").all()}
    assert inside == {"adam W1", "adam W2", "adam step"} and page.locator(".sg-match").count() == 0
    assert "inside closed groups" in page.inner_text(".sg-status")
    page.press("input[type=search]", "Enter")  # shows the first match: its group opens
    page.wait_for_selector('.sg-match[data-sg-op="sqrt"]')
    assert "sqrt" in page.inner_text("[data-sg-details]")
    page.fill("input[type=search]", "")
    assert page.locator(".sg-match, .sg-match-inside").count() == 0 and page.problems == []


def test_times_are_shown_and_shade_the_nodes(page, tmp_path):
    x = sg.vector("x")
    graph = sg.to_networkx(sg.tanh(sg.exp(x) * 3.0))
    for number, key in enumerate(key for key, kind in graph.nodes(data="kind") if kind == "op"):
        graph.nodes[key]["time"] = 0.002 * (number + 1)
    open_explorer(page, sg.plot(graph, tmp_path / "timed.html"))
    assert page.locator(".sg-heats > *").count() == 3
    page.click('[data-sg-node][data-sg-op="tanh"]')
    assert "6.00 ms (50.0% of the call)" in page.inner_text("[data-sg-details]")
    assert page.locator(".sg-legend-time").count() == 1 and page.problems == []


# --- side by side --------------------------------------------------------------------------------------------
def test_train_and_predict_side_by_side_mark_the_masks_and_the_updates(page, tmp_path):
    train, predict = adam_mlp()
    open_explorer(page, sg.plot([train, predict], tmp_path / "both.html", titles=["train", "predict"]))
    left, right = '[data-sg-panel="0"]', '[data-sg-panel="1"]'
    assert drawn(page, left) == viz.drawable(train).number_of_nodes()
    assert drawn(page, right) == viz.drawable(predict).number_of_nodes()
    for name in ("dropout", "adam W1", "gradients"):
        assert "sg-only" in page.locator(f'{left} [data-sg-node][data-sg-op="{name}"]').get_attribute("class")
    page.click(f'{left} [data-sg-node][data-sg-op="dropout"]')
    mask = page.locator(f'{left} [data-sg-node][data-sg-op="bernoulli_mask"]')
    assert mask.count() == 1 and "sg-only" in mask.get_attribute("class")
    assert page.locator(f'{right} [data-sg-op*="mask"]').count() == 0
    assert "sg-only" in page.locator(f'{right} [data-sg-op="softmax"]').get_attribute("class")
    assert "sg-only" not in page.locator(f'{left} [data-sg-node][data-sg-op="relu"]').get_attribute("class")
    assert page.locator(".sg-legend-only").count() == 1 and page.problems == []


def test_two_explorers_in_one_notebook_page_do_not_clash(page):
    train, predict = adam_mlp()
    page.set_content(f"<h1>notebook</h1>{train._repr_html_()}<p>and</p>{predict._repr_html_()}")
    frames = [frame for frame in page.frames if frame != page.main_frame]
    assert len(frames) == 2
    for frame in frames:
        frame.wait_for_selector("html[data-sg-ready]")
    counts = [frame.locator("[data-sg-node]").count() for frame in frames]
    assert counts == [viz.drawable(train).number_of_nodes(), viz.drawable(predict).number_of_nodes()]
    frames[0].click('[data-sg-node][data-sg-op="dropout"]')
    frames[0].wait_for_selector('[data-sg-node][data-sg-op="bernoulli_mask"]')
    assert frames[1].locator("[data-sg-node]").count() == counts[1]
    assert page.problems == []


# --- scale ---------------------------------------------------------------------------------------------------
def test_ten_thousand_nodes_open_and_respond(page, tmp_path):
    # How fast is benchmarks/explorer_open.py's business (a timed test would fail on a busy machine).
    path = sg.plot(chain_graph(10_000), tmp_path / "large.html")
    assert path.stat().st_size < 5_000_000
    open_explorer(page, path)
    page.locator("[data-sg-node]").first.click()
    page.wait_for_selector("[data-sg-details].sg-filled")
    # Zoomed out, the nodes are drawn on the overview canvas; zooming in makes the ones in view elements.
    assert page.evaluate("window.sgExplorer.views[0].boxes.size") >= 10_000
    page.mouse.move(700, 450)
    for _ in range(3):
        page.mouse.wheel(0, 400)
    page.wait_for_timeout(300)
    assert page.evaluate("window.sgExplorer.views[0].k") < 0.3 and drawn(page) == 0
    for _ in range(8):
        page.mouse.wheel(0, -400)
    page.wait_for_timeout(300)
    assert 0 < drawn(page) < 10_000 and page.problems == []


# --- the README's screenshot -----------------------------------------------------------------------------------
def test_screenshot_of_the_examples_train_and_predict_functions(page, tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from mlp_dropout_digits import Model
    finally:
        sys.path.remove(str(ROOT / "examples"))
    model = Model(seed=0, dtype="float64", rate=0.3)
    path = sg.plot([model.train, model.predict], tmp_path / "mlp.html", titles=["train", "predict"])
    page.set_viewport_size({"width": 1600, "height": 1000})
    open_explorer(page, path)
    page.click('[data-sg-panel="0"] [data-sg-node][data-sg-op="dropout"] >> nth=0')
    page.wait_for_timeout(400)
    page.click('[data-sg-panel="0"] [data-sg-node][data-sg-op="bernoulli_mask"] >> nth=0')
    target = Path(os.environ.get("SYMGRAPH_EXPLORER_SCREENSHOT") or tmp_path / "explorer.png")
    page.screenshot(path=str(target))
    assert target.read_bytes().startswith(b"\x89PNG") and target.stat().st_size > 50_000
    assert "bernoulli_mask" in page.inner_text("[data-sg-details]") and page.problems == []
