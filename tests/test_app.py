"""The Gradio app end to end, through gradio_client on loopback: predictions, step injection, sweeps, batch
files, experiments, the out-of-scope monitor and every kind of bad input (each answered with a message, after which
the app keeps serving)."""
from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest

from app_tiny import CLASSIFICATION, ROOT, build_tiny_checkpoint, free_port, pick_checkpoints

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import app  # noqa: E402
from cott.checkpoint import update_config  # noqa: E402
from cott_demo import experiment, experiment_tab, inputs, render, serving  # noqa: E402
from cott_demo.about import card_markdown  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    dirs, examples, which = pick_checkpoints(root)
    broken = root / "broken"
    broken.mkdir()
    (broken / "cott.json").write_text("{not json", encoding="utf-8")
    # A tiny classifier whose out-of-scope fit flags every input (its max p~ is never above 2).
    scoped = build_tiny_checkpoint(root / "scoped", dict(CLASSIFICATION, task="tinyscope"), "classification")
    update_config(scoped, out_of_scope={"signal": "max_rectified", "threshold": 2.0, "fit_on": "a test"})
    demo = app.build_demo(dirs + [str(broken), str(scoped)], examples=examples)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    names = [Path(d).name for d in dirs]
    configs = [json.loads((Path(d) / "cott.json").read_text(encoding="utf-8")) for d in dirs]
    yield {"client": client, "cls": names[0], "rel": names[1], "which": which, "configs": configs, "demo": demo,
           "configs_dirs": dirs}
    demo.close()


def ask(s, text, name=None, threshold=0.5):
    return s["client"].predict(name or s["cls"], text, threshold, api_name="/predict")


def assert_serving(s):
    """A normal prediction works (after a bad request)."""
    status, step_md, step_plot, answer_md, answer_plot, _, summary = ask(s, "what is my balance")
    assert status == ""
    assert summary["answer"] and "Step I" in step_md
    assert step_plot["type"] == "plotly" and answer_plot["type"] == "plotly"


def test_endpoints_are_named(served):
    endpoints = served["client"].view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/predict", "/inject", "/sweep", "/batch", "/experiment", "/model_info", "/example"} <= set(endpoints)


def test_predict_classification(served):
    status, step_md, step_plot, answer_md, answer_plot, step, summary = ask(served, "please set a timer for ten minutes")
    assert status == ""
    assert "p(Î|x)" in step_md and "Answer" in answer_md
    assert step["value"] == summary["step_words"]  # the step editor is pre-filled with Î, in words
    assert 0 <= summary["step_prob"] <= 1 and 0 <= summary["confidence"] <= 1
    fig = json.loads(answer_plot["plot"])
    assert fig["layout"]["height"] > 0 and len(fig["data"]) == 3  # p(y|x), p(y|x,Î), rectified
    assert json.loads(step_plot["plot"])["layout"]["height"] > 0


def test_reasoning_monitor_threshold(served):
    *_, low = ask(served, "what is my balance", threshold=1.0)
    *_, high = ask(served, "what is my balance", threshold=0.0)
    assert low["low_step_prob"] is True and high["low_step_prob"] is False
    step_md = ask(served, "what is my balance", threshold=1.0)[1]
    assert "Reasoning monitor" in step_md and "100.0%" in step_md


def test_predict_relation(served):
    status, step_md, *_, summary = ask(served, "[[Ada]] works for {{Acme}} in Paris.", name=served["rel"])
    assert status == ""
    assert " | " in summary["step"]  # subject type | object type


def test_step_injection_is_reflected(served):
    c = served["client"]
    _, _, _, raw = c.predict(served["rel"], "[[Ada]] works for {{Acme}}.", "person | organization", 0.5, api_name="/inject")
    assert raw["injected_step"] == "Peop | Org" and raw["injected_step_words"] == "person | organization"
    assert raw["injected_step_prob"] is not None
    status, table_md, plot, raw = c.predict(served["rel"], "[[Ada]] works for {{Acme}}.", "scientist | company", 0.5,
                                            api_name="/inject")
    assert status == "" and raw["injected_step_words"] == "scientist | company" and raw["injected_step_prob"] is None
    assert "free text" in table_md and plot["type"] == "plotly"


def test_step_injection_changes_a_trained_answer(served):
    """With a trained checkpoint, a step under which the sweep answers differently changes the answer."""
    c, name, text = served["client"], served["cls"], "how much money is left in my checking account"
    _, _, table = c.predict(name, text, api_name="/sweep")
    *_, base = ask(served, text, name=name)
    under = {row[0]: row[2] for row in table["data"]}
    own = base["step_words"]  # the sweep's table shows steps in words
    other = next((s for s, a in under.items() if s != own and a != under[own]), None)
    trained = bool(served["configs"][0].get("metrics"))
    if other is None:
        assert not trained or served["which"] == "tiny", "a trained model should answer differently under some step"
        pytest.skip("every step gives the same answer with this (untrained) checkpoint")
    _, md, _, raw = c.predict(name, text, other, 0.5, api_name="/inject")
    assert raw["injected_step_words"] == other
    assert raw["answer"] == under[other] != raw["model_answer"]
    assert "answer changed" in md


def test_sweep(served):
    status, plot, table = served["client"].predict(served["rel"], "[[Acme Ltd]] is based in {{London}}.", api_name="/sweep")
    assert status == ""
    fig = json.loads(plot["plot"])
    assert fig["data"][0]["type"] == "heatmap" and fig["layout"]["height"] > 0
    assert len(table["data"]) == len(served["configs"][1]["step_verbalizer"]["labels"]) ** 2  # subject x object types
    assert table["headers"][:3] == ["step", "p(step|x)", "answer under step"]


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return handle_file(str(path))


@pytest.mark.parametrize("name,content", [
    ("rows.csv", "id,text\n1,what is my balance\n2,\n3,\"=HYPERLINK(\"\"x\"\")\"\n4,book a flight to paris\n"),
    ("rows.jsonl", '{"text": "what is my balance"}\n\n{"text": ""}\n{"text": "=SUM(A1)"}\n{"text": "book a flight"}\n'),
])
def test_batch(served, tmp_path, name, content):
    status, table, download = served["client"].predict(served["cls"], write(tmp_path, name, content), 0.5, api_name="/batch")
    assert "Processed 4 rows" in status and "1 with errors" in status
    own = ["id"] if name.endswith(".csv") else []  # the file's own columns follow ours, in the table and the CSV
    assert table["headers"] == render.BATCH_COLUMNS + own
    rows = table["data"]
    assert rows[0][4] and rows[1][7].startswith("error") and rows[0][3].endswith("%")  # p(Î|x) as a percentage
    if own:
        assert [r[8] for r in rows] == ["1", "2", "3", "4"]
    csv_text = Path(download).read_text(encoding="utf-8")
    assert csv_text.splitlines()[0] == ",".join(render.BATCH_COLUMNS + own)
    assert "'=" in csv_text  # spreadsheet formulas neutralised


def test_batch_flags_low_confidence(served, tmp_path):
    _, table, _ = served["client"].predict(served["cls"], write(tmp_path, "a.csv", "text\nwhat is my balance\n"), 1.0,
                                           api_name="/batch")
    assert table["data"][0][6].startswith("⚠")


def test_experiment(served, tmp_path):
    """Upload a file, inject every known step: the summary cards, the plots and the CSV (one row per injection)."""
    steps = served["configs"][0]["step_verbalizer"]["labels"]
    content = ('text,label\nwhat is my balance,balance\nbook a flight to paris,book_flight\n'
               '"=SUM(A1), set a timer",timer\n')
    status, cards, heatmap, rates, table, download = served["client"].predict(
        served["cls"], write(tmp_path, "rows.csv", content), "all", None, 0, False, api_name="/experiment")
    assert status.startswith("✔") and f"3 rows, {3 * len(steps)} injections" in status
    for title in ("Inputs", "Injections", "Flip rate", "Step-following rate", "Accuracy under the injected steps"):
        assert title in cards
    assert json.loads(heatmap["plot"])["data"][0]["type"] == "heatmap"
    assert json.loads(rates["plot"])["data"][0]["type"] == "bar"
    # the table shown: headers in words, columns with nothing in them (no gold step, no out-of-scope note) left out
    hidden = {"gold_step", "note"}
    assert table["headers"] == [c.replace("_", " ") for c in experiment.RECORD_COLUMNS if c not in hidden]
    assert len(table["data"]) == 3 * len(steps) and table["data"][0][3].endswith("%")
    assert Path(download).name.endswith("_all_experiment.csv")
    with open(download, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == experiment.RECORD_COLUMNS and len(rows) == 3 * len(steps)
    assert [r["row"] for r in rows] == [str(k) for k in (1, 2, 3) for _ in steps]
    words = served["configs"][0]["step_verbalizer"]["words"]  # the app shows every step in words
    assert [r["injected_step"] for r in rows[: len(steps)]] == [words[s][0] for s in steps]
    assert rows[-1]["text"] == "'=SUM(A1), set a timer" and rows[0]["gold_label"] == "balance"
    assert all(r["changed"] == str(r["answer"] != r["model_answer"]) for r in rows)
    assert_serving(served)


@pytest.mark.parametrize("name,content,policy,step,expected", [
    ("a.csv", "text\nwhat is my balance\n", "fixed", "no such step", "is not a step this model knows"),
    ("empty.csv", "", "random_wrong", None, "the file is empty"),
    ("cols.csv", "id,sentence\n1,hello\n", "random_wrong", None, 'no "text" column'),
    ("partial.csv", "text,step\nwhat is my balance,banking\nbook a flight,\n", "given", None,
     "row 2 (line 3) has none"),
    ("huge.csv", "text\n" + "hi\n" * 100_000, "runner_up", None, "100,000 rows; the limit is 2,000"),
])
def test_experiment_bad_input(served, tmp_path, name, content, policy, step, expected):
    status, cards, _, _, table, download = served["client"].predict(
        served["cls"], write(tmp_path, name, content), policy, step, 0, False, api_name="/experiment")
    assert status.startswith("✖") and expected in status.replace("\\", "")
    assert download is None and not cards
    assert_serving(served)


def test_predict_flows_while_an_experiment_runs(served, tmp_path, monkeypatch):
    """The experiment has its own queue (concurrency_limit=1): /predict is answered while it runs."""
    started, release = threading.Event(), threading.Event()
    real = serving.run_counterfactuals

    def slow(*args, **kwargs):
        started.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment_tab, "run_counterfactuals", slow)
    job = served["client"].submit(served["cls"], write(tmp_path, "rows.csv", "text\nwhat is my balance\n"),
                                  "runner_up", None, 0, False, api_name="/experiment")
    try:
        assert started.wait(60), "the experiment did not start"
        t0 = time.perf_counter()
        assert_serving(served)
        assert time.perf_counter() - t0 < 30 and not job.done()
    finally:
        release.set()
    status, *_ = job.result(timeout=120)
    assert status.startswith("✔")


def test_out_of_scope_monitor(served, tmp_path):
    status, step_md, _, answer_md, *_, summary = ask(served, "what is my balance", name="tinyscope")
    assert status.startswith(f"### ⚠ {render.OUT_OF_SCOPE}") and "threshold 2.000" in status  # said first
    assert "<details>" in status.split("threshold 2.000")[0]  # the number folded away
    assert answer_md.startswith("### The model's guess:") and "✔" not in step_md
    assert summary["out_of_scope"] is True and summary["scope_threshold"] == 2.0 and 0 < summary["scope_score"] <= 1
    assert "Reasoning monitor" in step_md  # the p(Î|x) threshold monitor stays
    rel_status, rel_md, *_, rel = ask(served, "[[Ada]] works for {{Acme}} in Paris.", name=served["rel"])  # no fit
    assert render.OUT_OF_SCOPE not in rel_md and rel["out_of_scope"] is None and rel["scope_score"] is None
    assert render.OUT_OF_SCOPE not in rel_status
    status, table, _ = served["client"].predict("tinyscope", write(tmp_path, "a.csv", "text\nwhat is my balance\n"),
                                                0.0, api_name="/batch")
    assert table["data"][0][6] == "⚠ out of scope" and "1 out of scope" in status
    assert table["data"][0][7].startswith(experiment.SCOPE_VERDICT)  # said in words on the row


# ---- bad input: a message each time, and the app keeps serving ----------------------------------
@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("   \n\t ", "empty"),
])
def test_empty_text(served, text, expected):
    for api in ("/predict", "/sweep"):
        args = (served["cls"], text, 0.5) if api == "/predict" else (served["cls"], text)
        out = served["client"].predict(*args, api_name=api)
        assert out[0].startswith("✖") and expected in out[0]
    assert_serving(served)


def test_huge_text_is_truncated_with_notice(served):
    status, *_, summary = ask(served, "what is my balance " * 500)
    assert "only the first 2,000" in status and summary["answer"]
    assert_serving(served)


def test_a_text_cut_at_the_models_max_length_is_said_so(served, tmp_path):
    """Ask says it in the status line; Batch and Experiment rows say it in their note (a short text says nothing)."""
    long, short = "what is my balance " * 30, "what is my balance"  # longer than any test checkpoint reads
    assert "longer than this model reads" in ask(served, long)[0]
    assert "longer than this model reads" not in ask(served, short)[0]
    _, table, _ = served["client"].predict(served["cls"], write(tmp_path, "rows.csv", f"text\n{long}\n{short}\n"), 0.5,
                                           api_name="/batch")
    notes = [row[table["headers"].index("note")] for row in table["data"]]
    assert inputs.CUT_NOTE in notes[0] and inputs.CUT_NOTE not in notes[1]
    pipe = serving.load_pipeline(served["configs_dirs"][0])
    rows = experiment.result_rows(pipe.counterfactuals([long, short], "runner_up"), pipe.step_space.display)
    assert [inputs.CUT_NOTE in r["note"] for r in rows] == [True, False]


def test_html_is_escaped(served):
    c, evil = served["client"], "<script>alert(1)</script><img src=x onerror=alert(2)>"
    status, step_md, *_ = ask(served, evil)
    assert "<script" not in step_md and "<script" not in status
    assert "HTML tags: they are read as plain text" in status  # the README's promise: HTML input gets a message
    status, md, plot, raw = c.predict(served["cls"], evil, evil, 0.5, api_name="/inject")
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "<script" not in plot["plot"]
    assert_serving(served)


@pytest.mark.parametrize("text,expected", [
    ("Ada works for Acme.", "no subject marked"),
    ("[[Ada [[Lovelace]]]] works for {{Acme}}.", "exactly once"),
    ("[[Ada {{Acme}} ]] works.", "nested"),
])
def test_relation_marks(served, text, expected):
    status, *_ = ask(served, text, name=served["rel"])
    assert status.startswith("✖") and expected in status
    assert_serving(served)


def test_injected_step_with_wrong_parts(served):
    status, *_ = served["client"].predict(served["rel"], "[[Ada]] works for {{Acme}}.", "person", 0.5, api_name="/inject")
    assert status.startswith("✖") and "2 part" in status
    status, *_ = served["client"].predict(served["cls"], "what is my balance", "", 0.5, api_name="/inject")
    assert status.startswith("✖") and "step is empty" in status
    assert_serving(served)


@pytest.mark.parametrize("name,content,expected", [
    ("latin1.csv", "text\ncaf\xe9 cr\xe8me\n".encode("latin-1"), "not UTF-8"),
    ("blob.csv", bytes(range(256)) * 4, "binary"),
    ("cols.csv", "id,sentence\n1,hello\n", 'no "text" column'),
    ("bad.jsonl", '{"text": "ok"}\n{oops\n', "Line 2 is not valid JSON"),
    ("nokey.jsonl", '{"sentence": "ok"}\n', 'no "text" field'),
    ("empty.csv", "", "empty"),
    ("many.csv", "text\n" + "hello\n" * (inputs.BATCH_MAX_ROWS + 1), "limit is 1,000"),
    ("big.csv", "text\n" + ("x" * 1000 + "\n") * 2200, "MB"),
])
def test_bad_uploads(served, tmp_path, name, content, expected):
    status, table, download = served["client"].predict(served["cls"], write(tmp_path, name, content), 0.5, api_name="/batch")
    assert status.startswith("✖") and expected in status.replace("\\", "")
    assert download is None
    assert_serving(served)


def test_unknown_and_broken_models(served):
    c = served["client"]
    with pytest.raises(AppError, match="not in the list of choices"):
        ask(served, "what is my balance", name="no-such-model")
    status, *_ = ask(served, "what is my balance", name="broken")
    assert status.startswith("✖") and "could not be loaded" in status
    description = c.predict("broken", api_name="/model_info")[0]
    assert "could not be loaded" in description and "not valid JSON" in description
    assert_serving(served)


def test_model_info_and_examples(served):
    c = served["client"]
    description, input_help, examples, about, answer_words, step_words, step = c.predict(served["rel"], api_name="/model_info")
    assert "[[subject]]" in input_help
    assert "Template" in about and answer_words["data"] and step_words["data"]
    assert "two parts" in step["info"]  # the relation model's step has a slot per entity
    assert "two parts" not in c.predict(served["cls"], api_name="/model_info")[-1]["info"]
    text = c.predict(0, served["rel"], api_name="/example")
    assert "[[" in text and "{{" in text
    status, *_ = ask(served, text, name=served["rel"])
    assert status == ""


def test_default_checkpoints_and_env(monkeypatch):
    monkeypatch.delenv("COTT_CHECKPOINTS", raising=False)
    assert serving.configured_checkpoints() == [str(ROOT / "assets" / n) for n in ("clinc150", "clinc150-following", "conll04")]
    monkeypatch.setenv("COTT_CHECKPOINTS", " a/b , ./c ,")
    assert serving.configured_checkpoints() == ["a/b", "./c"]


def test_examples_file_is_well_formed():
    data = json.loads((ROOT / "assets" / "examples.json").read_text(encoding="utf-8"))
    assert len(data["clinc150"]) >= 5 and len(data["conll04"]) >= 5
    for text in data["conll04"]:
        assert text.count("[[") == text.count("]]") == text.count("{{") == text.count("}}") == 1


def test_about_card_shows_the_history_of_a_continued_checkpoint():
    parent = {"path": "runs/a/best", "training": {"command": "python -m train --task x <b>"}}
    card = {"task": "x", "training": {"command": "python -m train --init-from runs/a/best"}, "init_from": parent}
    pipe = type("P", (), {"labels": ["a"], "steps": ["s"], "kind": "classification"})()
    text = card_markdown(serving.Model("m", "spec", pipe=pipe, card=card))
    fenced = text.split("**Continued from**")[1].split("```")[1]  # literal inside a code block, which escapes HTML
    assert fenced.split("\n")[1:3] == ["# runs/a/best", "python -m train --task x <b>"]
    assert "Continued from" not in card_markdown(serving.Model("m", "spec", pipe=pipe, card={"task": "x"}))


def test_about_card_lists_the_ingredients_of_a_weight_average():
    ingredients = [{"path": "runs/a/best", "kept": True, "training": {"command": "python -m train <a>"}},
                   {"path": "runs/b/best", "kept": False, "training": {"command": "python -m train --seed 1"}}]
    card = {"task": "x", "training": {"command": "python -m experiments.soup"}, "ingredients": ingredients}
    pipe = type("P", (), {"labels": ["a"], "steps": ["s"], "kind": "classification"})()
    fenced = card_markdown(serving.Model("m", "spec", pipe=pipe, card=card)).split("**Weight average of**")[1].split("```")[1]
    assert fenced.split("\n")[1:5] == ["# runs/a/best (kept)", "python -m train <a>", "# runs/b/best (left out)",
                                       "python -m train --seed 1"]


def test_about_card_says_whether_the_step_confidence_is_calibrated():
    pipe = type("P", (), {"labels": ["a"], "steps": ["s"], "kind": "classification"})()
    cal = {"split": "val", "examples": 3260, "temperature": 3.249, "raw_ece": 0.136, "scaled_ece": 0.048}
    row = [line for line in card_markdown(serving.Model("m", "spec", pipe=pipe, card={"calibration": cal})).split("\n")
           if line.startswith("- **Step confidence")]
    assert len(row) == 1 and "T = 3.25" in row[0] and "3,260 val" in row[0] and "13.6% → 4.8%" in row[0]
    plain = card_markdown(serving.Model("m", "spec", pipe=pipe, card={}))
    assert "Step confidence" not in plain  # shown only when fitted
    direct = type("P", (), {"labels": ["a"], "steps": [], "kind": "classification"})()
    assert "Step confidence" not in card_markdown(serving.Model("m", "spec", pipe=direct, card={}))
