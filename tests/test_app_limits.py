"""The demo's limits at and just past each boundary, and the escaping of user text, without a browser or a server.

The events are called as Gradio wires them (``demo.fns``), on tiny random checkpoints, with the pipeline spied on so
that what the model really receives is checked, not only the notice shown to the user. Reading files, rendering and
plots are tested without Gradio.
"""
from __future__ import annotations

import csv
import math
import subprocess
import sys
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from app_tiny import ROOT, tiny_checkpoints

from cott import CoTTPipeline
from cott.pipeline import Prediction
from cott_demo import files, inputs, plots, render, serving
from cott_demo.about import card_markdown

EVIL = "<b>x</b><script>alert(1)</script>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    layout = pytest.importorskip("cott_demo.layout", reason="gradio is not installed")
    dirs, examples = tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))
    return layout.build_demo(dirs, examples=examples)


@pytest.fixture
def seen(monkeypatch):
    """Every call the pipeline gets: (inputs, step) for predictions, inputs for sweeps."""
    calls = SimpleNamespace(predict=[], sweep=[])
    call, sweep = CoTTPipeline.__call__, CoTTPipeline.sweep

    def spy_call(self, inputs, step=None, **kw):
        calls.predict.append((inputs, step))
        return call(self, inputs, step=step, **kw)

    def spy_sweep(self, inputs, **kw):
        calls.sweep.append(inputs)
        return sweep(self, inputs, **kw)

    monkeypatch.setattr(CoTTPipeline, "__call__", spy_call)
    monkeypatch.setattr(CoTTPipeline, "sweep", spy_sweep)
    return calls


def event(demo, api: str, *args) -> list:
    """Call the function wired to ``api`` and return its outputs in the order of the event's output components."""
    fn = next(f for f in demo.fns.values() if f.api_name == api)
    out = fn.fn(*args)
    if isinstance(out, dict):
        return [out.get(c) for c in fn.outputs]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def text_of(n: int) -> str:
    """A classification text of exactly n characters, in the tiny vocabulary."""
    return ("what is my balance " * (n // 19 + 1))[:n]


# ---- text and step length ------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [0, 1])
def test_long_text_is_truncated_before_the_pipeline(demo, seen, extra):
    text = text_of(inputs.MAX_CHARS + extra)
    status, *_, summary = event(demo, "predict", "tinyintent", text, 0.5)
    (texts, _), = seen.predict
    assert texts == [text[: inputs.MAX_CHARS]]
    notice = f"only the first {inputs.MAX_CHARS:,}"
    assert (notice in status) == bool(extra) and (notice in " ".join(summary["notices"])) == bool(extra)


@pytest.mark.parametrize("extra", [0, 1])
def test_long_text_is_truncated_for_inject_sweep_and_batch(demo, seen, tmp_path, extra):
    text = text_of(inputs.MAX_CHARS + extra)
    event(demo, "inject", "tinyintent", text, "travel", 0.5)
    event(demo, "sweep", "tinyintent", text)
    path = tmp_path / "rows.csv"
    path.write_text(f"text\n{text}\n", encoding="utf-8")
    status, table, _ = event(demo, "batch", "tinyintent", str(path), 0.5)
    assert seen.predict[0][0] == [text[: inputs.MAX_CHARS]] * 2
    assert seen.sweep == [text[: inputs.MAX_CHARS]]
    assert seen.predict[1][0] == [text[: inputs.MAX_CHARS]]
    assert ("only the first" in table["note"][0]) == bool(extra)


@pytest.mark.parametrize("extra", [0, 1])
def test_step_length_cap(demo, seen, extra):
    step = ("money " * 40)[: inputs.MAX_STEP_CHARS - 1] + "y" + "z" * extra
    status, _, _, raw = event(demo, "inject", "tinyintent", "what is my balance", step, 0.5)
    (texts, steps), = seen.predict
    assert steps == [None, step[: inputs.MAX_STEP_CHARS]]
    assert raw["injected_step_words"] == step[: inputs.MAX_STEP_CHARS].strip()
    assert (f"only the first {inputs.MAX_STEP_CHARS:,}" in status) == bool(extra)


# ---- a text box's check, alone (cott_demo.inputs) ------------------------------------------------
@pytest.mark.parametrize("text", [None, "", "  \n\t", "\x00 \x00"])
def test_an_empty_text_box_is_refused_in_words_naming_the_box(text):
    with pytest.raises(inputs.InputError, match=r"^The text is empty: type something first \(or click an example\)\.$"):
        inputs.clean_text(text)
    with pytest.raises(inputs.InputError, match="^The step is empty"):
        inputs.clean_text(text, what="step")


def test_a_text_box_value_that_is_no_string_is_refused():
    with pytest.raises(inputs.InputError, match=r"^The text must be a string\.$"):
        inputs.clean_text(3)


def test_nul_characters_are_dropped_and_the_rest_is_kept_as_typed():
    assert inputs.clean_text("what\x00 is my <balance") == ("what is my <balance", [])


@pytest.mark.parametrize("extra", [0, 1])
def test_the_truncation_notice_names_the_box_and_both_lengths(extra):
    text, notices = inputs.clean_text("x" * (10 + extra), limit=10, what="step")
    assert text == "x" * 10
    assert notices == (["The step had 11 characters; only the first 10 were used."] if extra else [])
    _, notices = inputs.clean_text("y" * (inputs.MAX_CHARS + 1))  # the default limit and name
    assert notices == [f"The text had {inputs.MAX_CHARS + 1:,} characters; only the first {inputs.MAX_CHARS:,} were used."]


def test_html_tags_are_kept_as_text_with_a_notice():
    text, notices = inputs.clean_text("a <b>bold</b> claim", what="step")
    assert text == "a <b>bold</b> claim"
    assert notices == ["The step contains HTML tags: they are read as plain text, never rendered."]
    assert inputs.clean_text("1 < 2 and 3 > 2") == ("1 < 2 and 3 > 2", [])  # comparisons are no tags


def test_the_monitor_threshold_is_the_sliders_or_the_default():
    assert inputs.monitor_threshold(None) == inputs.DEFAULT_THRESHOLD
    assert inputs.monitor_threshold(0) == 0.0 and inputs.monitor_threshold("0.25") == 0.25


def test_the_cut_notice_names_the_models_length():
    assert inputs.cut_notice(128) == ("The text is longer than this model reads (128 tokens): only part of it was used "
                                      "(the start, or for a relation the words around the marked pair).")


# ---- batch files ---------------------------------------------------------------------------------
def test_input_handling_needs_no_gradio():
    modules = "cott_demo.files, cott_demo.plots, cott_demo.render, cott_demo.serving"
    code = f"import sys, {modules}; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_formula_guard(prefix):
    assert render.safe_cell(prefix + "SUM(A1)") == "'" + prefix + "SUM(A1)"


@pytest.mark.parametrize("value", ["hello", "a=b", "1+1", "x-y", "mail@example.org", "", " =x", 3, 0.5])
def test_csv_formula_guard_leaves_safe_values(value):
    assert render.safe_cell(value) == value


def test_downloaded_csv_neutralises_every_formula_prefix(demo, tmp_path):
    prefixes = ["=", "+", "-", "@", "\t", "\r"]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"text": "{p.encode("unicode_escape").decode()}1+1 balance"}}\n' for p in prefixes)
                    + '{"text": "what is my balance"}\n', encoding="utf-8")
    _, _, download = event(demo, "batch", "tinyintent", str(path), 0.5)
    with open(download, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    assert texts == ["'" + p + "1+1 balance" for p in prefixes] + ["what is my balance"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("extra", [0, 1])
def test_row_limit(tmp_path, fmt, extra):
    n = inputs.BATCH_MAX_ROWS + extra
    path = tmp_path / f"rows.{fmt}"
    rows = [f"row {i}" for i in range(n)]
    body = "text\n" + "\n".join(rows) if fmt == "csv" else "\n".join(f'{{"text": "{r}"}}' for r in rows)
    path.write_text(body + "\n", encoding="utf-8")
    if extra:
        with pytest.raises(inputs.InputError, match=f"{n:,} rows; the limit is {inputs.BATCH_MAX_ROWS:,}"):
            files.read_batch_file(str(path))
    else:
        assert [r["text"] for r in files.read_batch_file(str(path))] == rows


@pytest.mark.parametrize("extra", [0, 1])
def test_upload_size_limit(tmp_path, extra):
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "' + b"x" * (inputs.MAX_UPLOAD_BYTES - 13 + extra) + b'"}\n')
    assert path.stat().st_size == inputs.MAX_UPLOAD_BYTES + extra
    if extra:
        with pytest.raises(inputs.InputError, match="the limit is 2 MB"):
            files.read_batch_file(str(path))
    else:
        assert len(files.read_batch_file(str(path))[0]["text"]) == inputs.MAX_UPLOAD_BYTES - 13


# ---- the reasoning monitor's threshold -----------------------------------------------------------
def test_monitor_threshold_boundary_in_ask(demo):
    *_, first = event(demo, "predict", "tinyintent", "what is my balance", 0.5)
    p = first["step_prob"]
    _, at_md, *_, at = event(demo, "predict", "tinyintent", "what is my balance", p)
    _, above_md, *_, above = event(demo, "predict", "tinyintent", "what is my balance", math.nextafter(p, 1))
    assert at["step_prob"] == p == above["step_prob"]
    assert at["low_step_prob"] is False and "✔ Reasoning monitor" in at_md and "⚠" not in at_md
    assert above["low_step_prob"] is True and "⚠ **Reasoning monitor" in above_md


def test_monitor_threshold_boundary_in_batch(demo, tmp_path):
    *_, first = event(demo, "predict", "tinyintent", "what is my balance", 0.5)
    path = tmp_path / "one.csv"
    path.write_text("text\nwhat is my balance\n", encoding="utf-8")

    def flag(threshold):
        status, table, _ = event(demo, "batch", "tinyintent", str(path), threshold)
        return status, table["flag"][0]

    p, conf = first["step_prob"], first["confidence"]
    assert "low step prob" not in flag(p)[1] and "low step prob" in flag(math.nextafter(p, 1))[1]
    assert "low answer confidence" not in flag(conf)[1] and "low answer confidence" in flag(math.nextafter(conf, 1))[1]
    status, lowest = flag(0.0)
    assert lowest == "" and "0 flagged" in status
    status, highest = flag(1.0)
    assert highest.startswith("⚠ ") and "1 flagged" in status


# ---- escaping of user text -----------------------------------------------------------------------
def prediction(step_words: str = "banking", labels=("balance", "travel"), step: str = "banking") -> Prediction:
    return Prediction(text=EVIL, labels=list(labels), answer=labels[0], p_rectified=[0.7, 0.3], p_answer=[0.6, 0.4],
                      steps=[step, "travel"], step=step, step_words=step_words, step_prob=0.2, p_steps=[0.2, 0.8],
                      p_answer_step=[0.8, 0.2])


def assert_escaped(text: str):
    assert "<b>" not in text and "<script" not in text and "&lt;b&gt;" in text


def test_markdown_escapes_user_text():
    evil = prediction(step_words=EVIL, labels=(EVIL, "travel"), step=EVIL)
    assert_escaped(render.step_section(evil, 0.5))
    assert_escaped(render.answer_section(evil))
    assert_escaped(render.comparison_md(prediction(), evil))
    assert_escaped(render.status_md(EVIL, [EVIL]))
    assert "\\*\\*" in render.esc("**bold**") and "\\[" in render.esc("[link](x)")


def test_model_name_and_card_are_escaped():
    pipe = SimpleNamespace(labels=["a"], steps=["s"], kind="classification")
    parent = {"path": EVIL, "training": {"command": "x ```\n<b>y</b>"}}
    card = {"task": EVIL, "description": EVIL, "metrics": {EVIL: EVIL}, "training": {"command": "x ``` <b>y</b>"},
            "init_from": parent}
    md = card_markdown(serving.Model(EVIL, "spec", pipe=pipe, card=card))
    outside = md.split("```")[0::2]  # the fenced blocks show text literally
    for part in outside:
        assert "<b>" not in part and "<script" not in part
    assert "&lt;b&gt;" in md
    assert_escaped(render.description(serving.Model(EVIL, EVIL, error=EVIL)))


def test_unknown_model_name_is_escaped(demo):
    status, *_ = event(demo, "predict", EVIL, "what is my balance", 0.5)
    assert status.startswith("✖") and "<b>" not in status and "<script" not in status


def test_toasts_are_escaped(demo, tmp_path, monkeypatch):
    import gradio as gr

    toasts = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **kw: toasts.append(message))
    path = tmp_path / "header.csv"
    path.write_text(f"{EVIL},other\n1,2\n", encoding="utf-8")
    status, *_ = event(demo, "batch", "tinyintent", str(path), 0.5)
    event(demo, "predict", "tinyintent", text_of(inputs.MAX_CHARS + 1), 0.5)
    assert 'no "text" column' in status and len(toasts) == 3  # the header's, then the text's: characters and tokens cut
    assert "longer than this model reads" in toasts[2]
    assert_escaped(toasts[0])  # a toast renders HTML


def figure_texts(fig) -> list[str]:
    """Every string plotly renders as (pseudo-)HTML: trace names, categories, texts, hover templates, titles."""
    out = [fig.layout.title.text or ""]
    for trace in fig.data:
        out.append(trace.name or "")
        out.append(trace.hovertemplate or "")
        for key in ("x", "y", "text"):
            values = getattr(trace, key, None)
            if values is not None:
                out += [str(v) for row in values for v in (row if isinstance(row, (list, tuple)) else [row])]
    out += [a.text for a in fig.layout.annotations]
    return out


@pytest.mark.parametrize("make", [
    lambda: plots.comparison_figure(prediction(), prediction(step_words=EVIL)),
    lambda: plots.comparison_figure(prediction(step_words=EVIL), prediction()),
    lambda: plots.answer_figure(prediction(labels=(EVIL, "travel"))),
    lambda: plots.step_figure(prediction(step_words=EVIL), [EVIL, "travel"]),
    lambda: plots.sweep_heatmap([EVIL, "s"], [EVIL, "y"], [[0.1, 0.9], [0.5, 0.5]], chosen=EVIL),
    lambda: plots.placeholder(EVIL),
])
def test_plot_labels_and_legends_are_escaped(make):
    texts = "\n".join(figure_texts(go.Figure(make())))
    assert "<b>x</b>" not in texts and "<script" not in texts
    assert "&lt;b&gt;x&lt;/b&gt;" in texts
