"""The app in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

Clicks an example, checks the plotly charts are drawn, edits the step, sweeps, uploads a batch file, runs an
experiment on an uploaded file and downloads its CSV, stops a long experiment, and checks what a person checks by eye
(the out-of-scope headline, headers not cut, tables within the page, bar labels inside the chart). Screenshots of
every tab after its results render, at desktop and phone width, go to screenshots/ (or $COTT_SCREENSHOTS); CI keeps
that folder.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest

from app_tiny import ROOT, free_port, pick_checkpoints

# COTT_CHROMIUM, else the first Chromium on PATH (Debian names it chromium, Ubuntu chromium-browser).
CHROMIUM = os.environ.get("COTT_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STRICT = os.environ.get("CI", "").lower() in ("true", "1", "yes")  # in CI the browser test must run


def unavailable(reason: str):
    """Skip the browser test, or with CI=true fail it: CI must not pass without it unnoticed."""
    if STRICT:
        pytest.fail(f"{reason}; CI=true needs the browser test to run", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


if not Path(CHROMIUM).exists():
    unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set COTT_CHROMIUM)")
try:
    from playwright import sync_api
except ImportError:
    unavailable("the playwright Python package is not installed")
import app  # noqa: E402
from cott_demo import experiment, render  # noqa: E402

SHOTS = Path(os.environ.get("COTT_SCREENSHOTS") or ROOT / "screenshots")
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 412, "height": 900}
OUT_OF_SCOPE_TEXT = "which planet has the most moons"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    dirs, examples, which = pick_checkpoints(tmp_path_factory.mktemp("ckpt"))
    following = ROOT / "assets" / "clinc150-following"
    if which == "assets" and (following / "cott.json").exists():  # a pair of one task for the Compare tab
        dirs = dirs + [str(following)]
    demo = app.build_demo(dirs, examples=examples)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as err:  # a Chromium that Playwright cannot drive
            unavailable(f"could not start {CHROMIUM}: {str(err).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The uploads: a batch file with columns of its own, a small experiment, and one over the row limit."""
    root = tmp_path_factory.mktemp("uploads")
    batch = root / "batch rows.csv"
    with open(batch, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text", "my_label"), ("a1", "what is my balance", "x"),
                                 ("a2", OUT_OF_SCOPE_TEXT, "y"), ("a3", "book a flight to paris", "z")])
    small = root / "experiment rows.csv"
    with open(small, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "step", "label"), *EXPERIMENT_ROWS])
    big = root / "big.csv"
    texts = ["what is my balance", "book a flight to paris", "set a timer for ten minutes", OUT_OF_SCOPE_TEXT]
    with open(big, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text",), *[(f"{texts[i % 4]} {i}",) for i in range(3_000)]])
    return {"batch": batch, "small": small, "big": big}


EXPERIMENT_ROWS = [("what is my balance", "banking", "balance"), ("book a flight to paris", "travel", "book_flight"),
                   ("=1+1 set a timer for ten minutes", "utility", "timer")]

# Headers whose longest word is wider than the header itself (a header split mid-word, "va l", or cut off).
CUT_HEADERS = """sel => { const ctx = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll(sel)].filter(e => e.offsetParent).map(e => {
    ctx.font = getComputedStyle(e).font;
    const need = Math.max(0, ...e.textContent.trim().split(/\\s+/).map(w => ctx.measureText(w).width));
    return [e.textContent.trim(), need, e.getBoundingClientRect().width]; })
    .filter(([, need, have]) => need > have + 1); }"""
# Tables wider than their block (they would scroll sideways) or than the window.
WIDE_TABLES = """() => [...document.querySelectorAll('.cott-table')].filter(b => b.offsetParent).map(b =>
  [b.id, b.querySelector('table').getBoundingClientRect().width, b.clientWidth, window.innerWidth])
  .filter(([, w, block, win]) => w > block + 1 || w > win)"""
# Bar labels (plotly's text) reaching past their chart, as at 412 px with the label outside a 99.7% bar.
CUT_LABELS = """sel => { const svg = document.querySelector(sel + ' .main-svg'); if (!svg) return ['no chart'];
  const box = svg.getBoundingClientRect();
  return [...document.querySelectorAll(sel + ' .bartext')].filter(t => t.textContent).map(t => [t.textContent,
    t.getBoundingClientRect().right, box.right]).filter(([, right, edge]) => right > edge + 1); }"""


def open_tab(page, name):
    """Click a tab, through the tab bar's "More tabs" menu where a narrow screen has folded it there."""
    tab = page.get_by_role("tab", name=name)
    if tab.count():
        tab.click()
        return
    page.get_by_label("More tabs").click()
    page.locator(".overflow-dropdown button", has_text=name).click()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def plot_drawn(page, elem_id, timeout=30_000):
    page.wait_for_selector(f"#{elem_id} .js-plotly-plot", timeout=timeout)
    assert page.locator(f"#{elem_id} .js-plotly-plot .main-svg").count() >= 1


def looks_right(page, phone=False):
    """What a person checks by eye on any tab: headers not cut, no table wider than the page, no sideways scroll on a
    phone, no glyph that renders as an empty box."""
    assert page.evaluate(CUT_HEADERS, ".cott-table th span.header, #about-card th, #about-card td:first-child") == []
    if phone:
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 8
    else:
        assert page.evaluate(WIDE_TABLES) == []
    assert "ⓘ" not in page.inner_text("body")


def upload(page, elem_id, path):
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id}").get_by_text(path.stem).first.wait_for(timeout=30_000)  # the upload is listed


def ask(page, text):
    page.locator("#text textarea").fill(text)
    page.locator("#ask").click()
    plot_drawn(page, "step-plot")
    plot_drawn(page, "answer-plot")


def test_ask_out_of_scope_edit_sweep(url, browser):
    page = browser.new_page(viewport=DESKTOP)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#examples .gallery-item", timeout=30_000)
    assert not page.locator("#step-plot").is_visible()  # no empty chart frame before there is a chart
    page.wait_for_selector(".cott-warm .js-plotly-plot", state="attached", timeout=30_000)  # plotly loaded up front
    box, button = page.locator("#text textarea").bounding_box(), page.locator("#ask").bounding_box()
    assert 0 <= button["y"] - (box["y"] + box["height"]) < 60  # Ask sits right under the text box

    if page.evaluate("document.body.innerText.includes('clinc150')"):  # the shipped checkpoint has an out-of-scope fit
        ask(page, OUT_OF_SCOPE_TEXT)
        headline = page.locator("#status h3")
        assert render.OUT_OF_SCOPE in headline.inner_text()
        assert headline.bounding_box()["y"] < page.locator("#step-md").bounding_box()["y"]  # said first
        assert page.inner_text("#answer-md").startswith("The model's guess:")
        assert "✔" not in page.inner_text("#step-md")  # no green tick beside it
        details = page.locator("#status details")  # the number is in a folded detail
        assert "Its in-scope score" in details.text_content() and details.get_attribute("open") is None
        shot(page, "ask_out_of_scope_desktop")

    example = page.locator("#examples .gallery-item").first
    example_text = example.inner_text().strip()
    example.click()  # fills the text box and runs the prediction
    page.wait_for_function("!document.querySelector('#status h3')", timeout=30_000)  # in scope: no headline
    plot_drawn(page, "step-plot")
    plot_drawn(page, "answer-plot")
    assert page.locator("#text textarea").input_value().strip() == example_text
    assert "Step I" in page.inner_text("body")
    assert page.locator("#step-input input").input_value(), "the step editor is pre-filled with the generated step"

    # Edit the step: free text, then answer with it.
    box = page.locator("#step-input input")
    box.click()
    box.fill("money <b>matters</b>")
    box.press("Enter")
    page.locator("#inject").click()
    plot_drawn(page, "compare-plot")
    page.wait_for_function("document.body.innerText.includes('your step')", timeout=30_000)
    body = page.inner_text("body")
    assert "money <b>matters</b>" in body  # shown as text, never as HTML
    assert page.locator("b:text-is('matters')").count() == 0
    assert not any(line.strip().startswith("=") for line in page.inner_text("#compare-md").splitlines())
    # Plotly draws <b> in SVG as a bold <tspan>: the legend must show the tags as text instead.
    legend = page.evaluate("[...document.querySelectorAll('#compare-plot .legendtext')].map(e => e.textContent)")
    assert "under yours: money <b>matters</b>" in legend
    bold = page.evaluate("[...document.querySelectorAll('#compare-plot tspan')]"
                         ".filter(e => /bold/.test(e.getAttribute('style') || '')).map(e => e.textContent)")
    assert not any("matters" in b for b in bold), bold

    page.locator("#sweep").click()
    plot_drawn(page, "sweep-plot")
    page.locator("#sweep-table .body-cell").first.wait_for(timeout=30_000)
    p_step = page.locator("#sweep-table .virtual-row .body-cell:nth-child(2)").first.inner_text()
    assert p_step.strip().endswith("%")  # p(step|x) as a percentage, as everywhere else
    looks_right(page)
    shot(page, "ask_desktop")

    page.locator("label").filter(has_text="conll04").first.click()  # another model: the last one's text and results go
    page.wait_for_function("!document.querySelector('#text textarea').value", timeout=30_000)
    assert not page.locator("#sweep-table").is_visible() and not page.locator("#step-plot").is_visible()
    assert not errors, errors
    page.close()


def tour(page, files, phone: bool):
    """Batch, Experiment and About after their results render: checked by eye, and a screenshot of each."""
    width = "phone" if phone else "desktop"
    open_tab(page, "Batch")
    upload(page, "batch-file", files["batch"])
    page.locator("#batch-run").click()
    page.locator("#batch-table .body-cell").first.wait_for(timeout=60_000)
    headers = page.evaluate("[...document.querySelectorAll('#batch-table th span.header')].map(e => e.textContent)")
    assert headers[-2:] == ["id", "my_label"]  # the file's own columns are kept
    table = page.inner_text("#batch-table")
    if "out of scope" in page.inner_text("body"):
        assert experiment.SCOPE_VERDICT in table  # said in words on the row
    looks_right(page, phone)
    shot(page, f"batch_{width}")

    open_tab(page, "Experiment")
    upload(page, "experiment-file", files["small"])
    page.locator("#experiment-run").click()
    page.wait_for_selector("#experiment-cards", timeout=60_000)
    plot_drawn(page, "experiment-heatmap")
    plot_drawn(page, "experiment-rates")
    page.locator("#experiment-table .body-cell").first.wait_for(timeout=30_000)
    looks_right(page, phone)
    shot(page, f"experiment_{width}")

    open_tab(page, "About")
    card = page.locator("#about-card")
    card.get_by_text("Training arguments").or_(card.get_by_text("How it was trained")).first.wait_for(timeout=10_000)
    assert not card.get_by_text("Training arguments").is_visible()  # folded away
    assert "{" not in card.inner_text()  # no raw JSON
    looks_right(page, phone)
    shot(page, f"about_{width}")

    open_tab(page, "Compare")
    if page.locator("#compare-a input").input_value() and page.locator("#compare-b input").input_value():
        page.locator("#compare-text textarea").fill("can you tell me why my card was declined at the grocery store")
        page.locator("#compare-step input").fill("travel")
        page.locator("#compare-run").click()
        page.wait_for_function("document.querySelector('#compare-table').innerText.includes('answer under your step')",
                               timeout=60_000)
        looks_right(page, phone)
        shot(page, f"compare_{width}")


def test_tabs_desktop(url, browser, files, tmp_path):
    """Every tab at desktop width, and the experiment's CSV download."""
    page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#examples .gallery-item", timeout=30_000)
    tour(page, files, phone=False)

    page.get_by_role("tab", name="Experiment").click()
    cards = page.inner_text("#experiment-cards")
    for title in ("Inputs", "Injections", "Flip rate", "Step-following rate", "Accuracy under the injected steps"):
        assert title in cards
    assert "3 rows, 3 injections" in page.inner_text("#experiment-status")
    link = page.locator("#experiment-csv a[download]").first
    link.wait_for(timeout=30_000)
    with page.expect_download(timeout=30_000) as download:
        link.click()
    saved = tmp_path / "downloaded.csv"
    download.value.save_as(saved)
    with open(saved, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert [r["row"] for r in got] == ["1", "2", "3"]
    assert [(r["gold_step"], r["gold_label"]) for r in got] == [(s, lab) for _, s, lab in EXPERIMENT_ROWS]
    assert got[2]["text"] == "'=1+1 set a timer for ten minutes"  # a formula is neutralised
    for r in got:
        assert r["injected_step"] not in ("", r["model_step"], r["gold_step"])  # a random wrong step
    assert not errors, errors
    page.close()


def test_phone_width_layout(url, browser, files):
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page.goto(url)
    page.wait_for_selector("#examples .gallery-item", timeout=30_000)
    page.locator("#examples .gallery-item").first.click()
    plot_drawn(page, "step-plot")
    plot_drawn(page, "answer-plot")
    page.wait_for_timeout(300)  # plotly's text is placed just after the chart
    for chart in ("#step-plot", "#answer-plot"):
        assert page.evaluate(CUT_LABELS, chart) == [], chart
    looks_right(page, phone=True)
    shot(page, "ask_phone")
    tour(page, files, phone=True)
    page.close()


def test_stop_keeps_the_finished_rows(url, browser, files):
    """A file over the row limit is offered its first 2,000 rows; Stop ends the run and keeps the rows done so far."""
    page = browser.new_page(viewport=DESKTOP)
    page.goto(url)
    page.get_by_role("tab", name="Experiment").click()
    upload(page, "experiment-file", files["big"])
    page.locator("#experiment-run").click()
    first = page.locator("#experiment-first")
    first.wait_for(timeout=30_000)
    assert "3,000 rows; the limit is 2,000" in page.inner_text("#experiment-status")
    first.click()
    page.wait_for_function("/rows [0-9,]+–[0-9,]+ of 2,000/.test(document.querySelector('#experiment-status')"
                           ".innerText)", timeout=60_000)
    box = page.locator("#experiment-status").bounding_box()
    assert 0 <= box["y"] and box["y"] + min(box["height"], 40) <= DESKTOP["height"]  # the progress is in view
    page.locator("#experiment-stop").click()
    page.wait_for_function("document.querySelector('#experiment-status').innerText.includes('Stopped after')",
                           timeout=120_000)
    status = page.inner_text("#experiment-status")
    done = int(re.search(r"Stopped after ([\d,]+) of 2,000 rows", status).group(1).replace(",", ""))
    assert 0 < done < 2_000 and "only the first 2,000 were run" in status
    assert f"Inputs\n{done:,}" in page.inner_text("#experiment-cards")  # the finished rows are kept
    assert not first.is_visible()
    shot(page, "experiment_stopped_desktop")
    page.close()


def test_batch_upload_shows_user_text_as_text(url, browser, tmp_path):
    """A CSV header is user text: the status line and the warning toast show its tags, never render them."""
    path = tmp_path / "header.csv"
    path.write_text("<b id=pwn>bold</b>,<img id=pwn2 src=x>\n1,2\n", encoding="utf-8")
    page = browser.new_page(viewport=DESKTOP)
    page.goto(url)
    page.get_by_role("tab", name="Batch").click()
    upload(page, "batch-file", path)
    page.locator("#batch-run").click()
    page.wait_for_function("document.body.innerText.split('<b id=pwn>bold</b>').length > 2", timeout=30_000)
    assert page.locator("#pwn, #pwn2").count() == 0


def test_why_this_step_at_phone_width(url, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(url)
    page.wait_for_selector("#text textarea", timeout=30_000)
    page.locator("#text textarea").fill("what is my <i>balance</i> today")
    page.locator("#explain-button").click()
    page.wait_for_selector("#explain .cott-why-row", timeout=30_000)
    rows = page.locator("#explain .cott-why-row")
    assert rows.count() == 2  # why this step, why this answer under it
    assert rows.first.locator(".cott-why-word").count() == 5  # one shaded span a word
    assert page.locator("#explain i").count() == 0  # the user's tags shown as text
    assert "<i>balance</i>" in page.inner_text("#explain")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 8, f"the page scrolls sideways by {overflow}px on a phone"
    shot(page, "explain_phone")
    page.close()
