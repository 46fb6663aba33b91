"""The app in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

Clicks an example, checks the plotly charts are drawn, edits the step, sweeps, uploads a batch file, runs an
experiment on an uploaded file and downloads its CSV, and saves screenshots at laptop and phone width (into a tmp
dir, and into $COTT_SCREENSHOTS when set).
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from app_tiny import free_port, pick_checkpoints  # also puts the repository root on sys.path

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


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    dirs, examples, _ = pick_checkpoints(tmp_path_factory.mktemp("ckpt"))
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


@pytest.fixture
def shots(tmp_path):
    extra = os.environ.get("COTT_SCREENSHOTS")

    def save(page, name):
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)

    return save


def plot_drawn(page, elem_id, timeout=30_000):
    page.wait_for_selector(f"#{elem_id} .js-plotly-plot", timeout=timeout)
    assert page.locator(f"#{elem_id} .js-plotly-plot .main-svg").count() >= 1


def test_example_predict_edit_sweep(url, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#examples .gallery-item", timeout=30_000)
    example = page.locator("#examples .gallery-item").first
    example_text = example.inner_text().strip()
    example.click()  # fills the text box and runs the prediction
    plot_drawn(page, "step-plot")
    plot_drawn(page, "answer-plot")
    assert page.locator("#text textarea").input_value().strip() == example_text
    assert "Step I" in page.inner_text("body")
    step_value = page.locator("#step-input input").input_value()
    assert step_value, "the step editor is pre-filled with the generated step"
    shots(page, "predict_desktop")

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
    # Plotly draws <b> in SVG as a bold <tspan>: the legend must show the tags as text instead.
    legend = page.evaluate("[...document.querySelectorAll('#compare-plot .legendtext')].map(e => e.textContent)")
    assert "under yours: money <b>matters</b>" in legend
    bold = page.evaluate("[...document.querySelectorAll('#compare-plot tspan')]"
                         ".filter(e => /bold/.test(e.getAttribute('style') || '')).map(e => e.textContent)")
    assert not any("matters" in b for b in bold), bold

    page.locator("#sweep").click()
    plot_drawn(page, "sweep-plot")
    shots(page, "inject_sweep_desktop")
    assert not errors, errors
    page.close()


def test_phone_width_layout(url, browser, shots):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(url)
    page.wait_for_selector("#examples .gallery-item", timeout=30_000)
    page.locator("#examples .gallery-item").first.click()
    plot_drawn(page, "answer-plot")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 8, f"the page scrolls sideways by {overflow}px on a phone"
    shots(page, "predict_phone")
    page.close()


def test_batch_upload_shows_user_text_as_text(url, browser, tmp_path):
    """A CSV header is user text: the status line and the warning toast show its tags, never render them."""
    path = tmp_path / "header.csv"
    path.write_text("<b id=pwn>bold</b>,<img id=pwn2 src=x>\n1,2\n", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.get_by_role("tab", name="Batch").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click to Upload").first.click()
    chooser.value.set_files(str(path))
    page.get_by_text("header", exact=True).wait_for(timeout=30_000)  # the uploaded file is listed
    page.get_by_role("button", name="Run batch").click()
    page.wait_for_function("document.body.innerText.split('<b id=pwn>bold</b>').length > 2", timeout=30_000)
    assert page.locator("#pwn, #pwn2").count() == 0
    page.close()


def test_experiment_upload_run_download(url, browser, shots, tmp_path):
    """The Experiment tab: upload a CSV, run the default policy (a random wrong step), see the cards and both plots,
    and download the per-injection CSV."""
    rows = [("what is my balance", "banking", "balance"), ("book a flight to paris", "travel", "book_flight"),
            ("=1+1 set a timer for ten minutes", "utility", "timer")]
    path = tmp_path / "experiment rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "step", "label"), *rows])
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.get_by_role("tab", name="Experiment").click()
    page.locator("#experiment-file input[type=file]").set_input_files(str(path))
    page.locator("#experiment-file").get_by_text("experiment rows").wait_for(timeout=30_000)  # the upload is listed
    page.locator("#experiment-run").click()
    page.wait_for_selector("#experiment-cards", timeout=60_000)
    plot_drawn(page, "experiment-heatmap")
    plot_drawn(page, "experiment-rates")
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
    assert [(r["gold_step"], r["gold_label"]) for r in got] == [(s, lab) for _, s, lab in rows]
    assert got[2]["text"] == "'=1+1 set a timer for ten minutes"  # a formula is neutralised
    for r in got:
        assert r["injected_step"] not in ("", r["model_step"], r["gold_step"])  # a random wrong step
    shots(page, "experiment_desktop")
    assert not errors, errors
    page.close()


def test_why_this_step_at_phone_width(url, browser, shots):
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
    shots(page, "explain_phone")
    page.close()
