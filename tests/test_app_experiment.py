"""The Experiment tab: cott_demo.experiment without Gradio (the file, its checks at and past each bound, the chunked
run and the rows of the CSV), then the tab's event as Gradio wires it (``demo.fns``), on tiny random checkpoints."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

from app_tiny import CLASSIFICATION, ROOT, build_tiny_checkpoint, tiny_checkpoints

from cott import CoTTPipeline
from cott.checkpoint import update_config
from cott.counterfactual import CounterfactualRecord, Injection
from cott_demo import experiment as exp
from cott_demo import inputs, plots, render

STEP_WORDS = ("banking travel utility balance transfer book flight weather alarm money account trip minutes person "
              "organization location other works lives located based").split()  # 21 words of the tiny vocabulary


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    (cls, rel), _ = tiny_checkpoints(root)
    many = {}
    for n in (exp.MAX_INJECTIONS, exp.MAX_INJECTIONS + 1):  # a model with 20 known steps, and one with 21
        spec = dict(CLASSIFICATION, task=f"steps{n}", steps={w: [w] for w in STEP_WORDS[:n]})
        many[n] = str(build_tiny_checkpoint(root / f"many{n}", spec, "classification"))
    table = root / "table"  # the tiny classifier with a step-answer table (a hierarchy), as trained ones record
    import shutil

    shutil.copytree(cls, table)
    update_config(table, hierarchy={"balance": "banking", "transfer": "banking", "book_flight": "travel",
                                    "weather": "travel", "set_alarm": "utility", "timer": "utility"})
    return {"cls": cls, "rel": rel, "many": many, "table": str(table)}


@pytest.fixture(scope="module")
def pipes(ckpts):
    return {k: CoTTPipeline.from_pretrained(v, device="cpu") for k, v in ckpts.items() if k != "many"}


def write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def csv_file(tmp_path, rows: list[dict], name="rows.csv") -> str:
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return str(path)


def plan_of(pipe, path, policy="random_wrong", step=None, **kw):
    return exp.make_plan(pipe, exp.read_file(path), policy, step, path=path, **kw)


def runner_of(pipe, calls=None):
    def run(inputs, policy, **kw):
        if calls is not None:
            calls.append((list(inputs), policy, kw))
        return pipe.counterfactuals(inputs, policy, **kw)

    return run


ROWS = [{"text": "what is my balance", "step": "banking", "label": "balance"},
        {"text": "book a flight to paris", "step": "travel", "label": "book_flight"},
        {"text": "set a timer for ten minutes", "step": "utility", "label": "timer"}]


# ---- the bounds, at and past each ----------------------------------------------------------------
@pytest.mark.parametrize("extra", [0, 1])
def test_row_limit(pipes, tmp_path, extra):
    n = exp.EXPERIMENT_MAX_ROWS + extra
    path = write(tmp_path, "rows.csv", "text\n" + "what is my balance\n" * n)
    if extra:
        with pytest.raises(inputs.InputError, match=f"rows.csv: {n:,} rows; the limit is {exp.EXPERIMENT_MAX_ROWS:,}"):
            exp.read_file(path)
        with pytest.raises(inputs.InputError, match=f"{n:,} rows; the limit is {exp.EXPERIMENT_MAX_ROWS:,}"):
            exp.make_plan(pipes["cls"], [{"text": "x"}] * n, "runner_up")
    else:
        assert plan_of(pipes["cls"], path).rows == n
        assert exp.read_first(path) == (exp.read_file(path), [])  # at the limit: all of it, and nothing to say


def test_100000_rows_are_refused_by_name(pipes, tmp_path):
    path = write(tmp_path, "huge.csv", "text\n" + "hi\n" * 100_000)
    with pytest.raises(exp.TooManyRows) as err:
        exp.read_file(path)
    assert str(err.value) == "huge.csv: 100,000 rows; the limit is 2,000. Run its first 2,000 rows with the button below, or split it."
    rows, notices = exp.read_first(path)  # what the button runs: the first 2,000 rows, said in the result
    assert len(rows) == exp.EXPERIMENT_MAX_ROWS and notices == ["The file has 100,000 rows; only the first 2,000 were run."]


@pytest.mark.parametrize("extra", [0, 1])
def test_injections_per_row_limit(ckpts, tmp_path, extra):
    pipe = CoTTPipeline.from_pretrained(ckpts["many"][exp.MAX_INJECTIONS + extra], device="cpu")
    path = csv_file(tmp_path, ROWS[:1])
    if extra:
        with pytest.raises(inputs.InputError, match=f"21 per row; the limit is {exp.MAX_INJECTIONS}"):
            plan_of(pipe, path, "all")
        assert plan_of(pipe, path, "runner_up").per_row == 1  # the other policies inject one step
    else:
        plan = plan_of(pipe, path, "all")
        assert plan.per_row == exp.MAX_INJECTIONS
        records = exp.run(plan, runner_of(pipe))
        assert [i.step for i in records[0].injections] == pipe.steps


@pytest.mark.parametrize("extra", [0, 1])
def test_upload_size_limit(tmp_path, extra):
    path = write(tmp_path, "big.jsonl", b'{"text": "' + b"x" * (inputs.MAX_UPLOAD_BYTES - 13 + extra) + b'"}\n')
    assert Path(path).stat().st_size == inputs.MAX_UPLOAD_BYTES + extra
    if extra:
        with pytest.raises(inputs.InputError) as err:
            exp.read_file(path)
        assert str(err.value) == "The file is 2.0 MB; the limit is 2 MB. Split it."
    else:
        assert len(exp.read_file(path)) == 1


# ---- bad input: a clear message naming what is wrong ---------------------------------------------
@pytest.mark.parametrize("name,content,expected", [
    ("empty.csv", "", "empty.csv: the file is empty"),
    ("header.csv", "text,step\n", "header.csv: the file has no rows"),
    ("cols.csv", "id,sentence\n1,hello\n", 'cols.csv: no "text" column (found: id, sentence)'),
    ("blank.csv", "text,label\nhello,a\n  ,b\n", 'blank.csv, line 3: the "text" cell is empty'),
    ("latin1.csv", "text\ncaf\xe9\n".encode("latin-1"), "UnicodeDecodeError"),
    ("bad.jsonl", '{"text": "ok"}\n{oops\n', "bad.jsonl: could not be read as JSON"),
])
def test_bad_files(tmp_path, name, content, expected):
    path = write(tmp_path, name, content)
    with pytest.raises(inputs.InputError) as err:
        exp.read_file(path)
    assert expected in str(err.value)
    assert str(tmp_path) not in str(err.value)  # the upload's temporary folder is not shown


@pytest.mark.parametrize("policy,step,column,expected", [
    ("fixed", "nonsense", None, "The fixed step 'nonsense' is not a step this model knows (its steps: banking, "
                                "travel, utility)"),
    ("fixed", "", None, '"A fixed step for every row" needs a step'),
    ("given", None, ["banking", "nonsense", "travel"], "Row 2 (line 3): the step 'nonsense' is not a step this model "
                                                       "knows"),
    ("gold", None, ["banking", "travel", "money"], "Row 3 (line 4): the step 'money' is not a step"),
    ("random_wrong", None, ["banking", "money", None], "Row 2 (line 3): the step 'money'"),
    ("given", None, ["banking", None, None], "a step in every row (the step to inject): row 2 (line 3) has none, and "
                                             "2 of 3 rows in all"),
    ("gold", None, [None, "travel", "utility"], "row 1 (line 2) has none"),
    ("given", None, [None, None, None], '"The file\'s step column (a step per row)" needs a "step" column'),
    ("gold", None, None, '"The gold step (the file\'s step column): the oracle" needs a "step" column'),
    ("nonsense", None, None, "Unknown policy 'nonsense'"),
])
def test_bad_steps_and_policies(pipes, tmp_path, policy, step, column, expected):
    rows = [{"text": r["text"], "step": column[k] if column else ""} for k, r in enumerate(ROWS)]
    path = csv_file(tmp_path, [{k: v or "" for k, v in r.items()} for r in rows])
    with pytest.raises(inputs.InputError) as err:
        plan_of(pipes["cls"], path, policy, step)
    assert expected in str(err.value)


def test_plans_the_model_or_the_file_cannot_carry_are_refused_in_words(pipes, ckpts):
    from types import SimpleNamespace

    rows = [{"text": "what is my balance"}]
    direct = SimpleNamespace(has_steps=False)
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(direct, rows, "runner_up")
    assert str(err.value) == "This model answers directly: it has no intermediate step to inject. Choose another model."
    lone = SimpleNamespace(has_steps=True, step_answers=None, steps=["banking"])
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(lone, rows, "runner_up")
    assert str(err.value) == '"The runner-up: the model\'s second most likely step" needs a model with at least two known steps.'
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(pipes["cls"], [], "runner_up")
    assert str(err.value) == "The file has no rows."
    with pytest.raises(exp.TooManyRows) as err:
        exp.make_plan(pipes["cls"], rows * (exp.EXPERIMENT_MAX_ROWS + 1), "runner_up")
    assert str(err.value) == "The file has 2,001 rows; the limit is 2,000. Split it."
    many = CoTTPipeline.from_pretrained(ckpts["many"][exp.MAX_INJECTIONS + 1], device="cpu")
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(many, rows, "all")
    assert str(err.value) == '"Every known step" injects 21 per row; the limit is 20. Choose other steps to inject.'
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(pipes["cls"], rows, "runner_up", seed="x")
    assert str(err.value) == "The seed must be a whole number, not 'x'."
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(pipes["cls"], [dict(r, step="") for r in rows], "given")
    assert str(err.value) == ('"The file\'s step column (a step per row)" needs a "step" column (the step to inject into '
                              'each row); the file has none.')
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(pipes["cls"], rows * 2, "gold")
    assert str(err.value) == ('"The gold step (the file\'s step column): the oracle" needs a "step" column (the gold step '
                              'to inject into each row); the file has none.')
    with pytest.raises(inputs.InputError) as err:
        exp.make_plan(pipes["cls"], [dict(r, step=s) for r, s in zip(rows * 3, ["banking", None, ""])], "gold")
    assert str(err.value) == ('"The gold step (the file\'s step column): the oracle" needs a step in every row (the gold '
                              'step to inject): row 2 has none, and 2 of 3 rows in all.')
    plan = exp.make_plan(pipes["cls"], rows, "runner_up", seed=None)
    assert (plan.seed, plan.constrained, plan.per_row, plan.steps, plan.gold_steps, plan.labels) == (0, False, 1, None, None, None)


def test_steps_are_read_as_labels_or_words(pipes, tmp_path):
    path = csv_file(tmp_path, [{"text": "[[Ada]] works for {{Acme}}.", "step": " Person |organization "},
                               {"text": "[[Acme]] is in {{Paris}}.", "step": "ORG | Loc"}])
    plan = plan_of(pipes["rel"], path, "given")
    assert plan.steps == ["Peop | Org", "Org | Loc"]
    assert plan_of(pipes["rel"], path, "fixed", "location | location").steps == "Loc | Loc"


def test_a_partial_step_column_is_gold_steps_for_the_other_policies(pipes, tmp_path):
    rows = [dict(r, step=s) for r, s in zip(ROWS, ["banking", "", "Utility"])]
    plan = plan_of(pipes["cls"], csv_file(tmp_path, rows), "random_wrong", seed=3)
    assert plan.gold_steps == ["banking", None, "utility"] and plan.steps is None
    records = exp.run(plan, runner_of(pipes["cls"]))
    for rec, gold in zip(records, plan.gold_steps):
        assert rec.gold_step == gold
        (inj,) = rec.injections
        assert inj.step not in (rec.step, gold)  # wrong for the model and for the data


def test_relation_rows_need_marks_or_columns(pipes, tmp_path):
    ok = csv_file(tmp_path, [{"text": "Ada works for Acme.", "subj": "Ada", "obj": "Acme"},
                             {"text": "[[Ada]] lives in {{Paris}}.", "subj": "", "obj": ""}], "ok.csv")
    plan = plan_of(pipes["rel"], ok, "runner_up")
    assert plan.inputs == [{"text": "Ada works for Acme.", "subj": "Ada", "obj": "Acme"}, "[[Ada]] lives in {{Paris}}."]
    bad = csv_file(tmp_path, [{"text": "[[Ada]] works for {{Acme}}."}, {"text": "Ada lives in Paris."}], "bad.csv")
    with pytest.raises(inputs.InputError, match=r"Row 2 \(line 3\): .*subject"):
        plan_of(pipes["rel"], bad, "runner_up")


def test_constrained_needs_a_step_answer_table(pipes, tmp_path):
    path = csv_file(tmp_path, ROWS)
    with pytest.raises(inputs.InputError, match="records no step-answer table"):
        plan_of(pipes["cls"], path, constrained=True)
    records = exp.run(plan_of(pipes["table"], path, "all", constrained=True), runner_of(pipes["table"]))
    assert all(i.follows for r in records for i in r.injections)  # within the step: following by construction


def test_unknown_labels_count_as_none_with_a_notice(pipes, tmp_path):
    rows = [dict(r, label=lab) for r, lab in zip(ROWS, ["balance", "no_such_label", ""])]
    plan = plan_of(pipes["cls"], csv_file(tmp_path, rows), "runner_up")
    assert plan.labels == ["balance", None, None]
    assert any(n.startswith("1 rows have a label this model does not know (e.g. 'no_such_label'); accuracy leaves")
               for n in plan.notices)


def test_long_texts_are_truncated_with_a_notice(pipes, tmp_path):
    text = ("what is my balance " * 200)[: inputs.MAX_CHARS + 1]
    plan = plan_of(pipes["cls"], csv_file(tmp_path, [{"text": text}, {"text": text[:-1]}]), "runner_up")
    assert plan.inputs == [text[: inputs.MAX_CHARS]] * 2
    assert plan.notices == [f"1 texts had over {inputs.MAX_CHARS:,} characters; only the first "
                            f"{inputs.MAX_CHARS:,} were used."]


# ---- the run and its rows ------------------------------------------------------------------------
def test_chunks_give_the_rows_of_one_call_in_file_order(pipes, tmp_path, monkeypatch):
    rows = [{"text": t, "step": s, "label": lab} for t, s, lab in
            [("what is my balance", "banking", "balance"), ("book a flight", "travel", "book_flight"),
             ("set an alarm", "utility", "set_alarm"), ("weather in paris", "travel", "weather"),
             ("transfer money to my account", "banking", "transfer")]]
    plan = plan_of(pipes["cls"], csv_file(tmp_path, rows), "all")
    whole = exp.run(plan, runner_of(pipes["cls"]))
    monkeypatch.setattr(exp, "CHUNK", 2 * plan.per_row)  # about CHUNK injections a call: 2 rows of every step
    calls, ticks = [], []
    chunked = exp.run(plan, runner_of(pipes["cls"], calls), lambda done, total: ticks.append((done, total)))
    assert [len(c[0]) for c in calls] == [2, 2, 1]
    assert [c[2]["seed"] for c in calls] == [0, 2, 4] and [c[2]["labels"] for c in calls][2] == ["transfer"]
    assert ticks == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert [r.index for r in chunked] == [0, 1, 2, 3, 4]
    def strip(records):
        return [(r.text, r.step, r.answer, [(i.step, i.answer) for i in r.injections]) for r in records]

    assert strip(chunked) == strip(whole)


def test_each_chunk_injects_the_files_own_steps_or_the_fixed_one(pipes, tmp_path, monkeypatch):
    """The steps a plan carries reach the model chunk by chunk: "given" injects each row's step from the file (the
    chunk's own slice), "fixed" the one step into every row."""
    pipe = pipes["cls"]
    steps = ["travel", "utility", "banking", "utility", "travel"]
    rows = [{"text": t, "step": s} for t, s in zip(["what is my balance", "book a flight", "set an alarm",
                                                    "weather in paris", "transfer money"], steps)]
    path = csv_file(tmp_path, rows)
    monkeypatch.setattr(exp, "CHUNK", 2)
    given = exp.run(plan_of(pipe, path, "given"), runner_of(pipe))
    assert [[i.step for i in r.injections] for r in given] == [[s] for s in steps]
    for rec, row in zip(given, rows):
        assert rec.injections[0].answer == pipe(row["text"], step=row["step"]).answer
    fixed = exp.run(plan_of(pipe, path, "fixed", "utility"), runner_of(pipe))
    assert [[i.step for i in r.injections] for r in fixed] == [["utility"]] * len(rows)


def test_result_rows_are_the_pipelines_answers(pipes, tmp_path):
    pipe = pipes["cls"]
    plan = plan_of(pipe, csv_file(tmp_path, ROWS), "all")
    rows = exp.result_rows(exp.run(plan, runner_of(pipe)), pipe.step_space.display)
    assert len(rows) == len(ROWS) * len(pipe.steps) and list(rows[0]) == exp.RECORD_COLUMNS
    for row in rows:
        source = ROWS[row["row"] - 1]
        own, under = pipe(source["text"]), pipe(source["text"], step=row["injected_step"])
        assert row["text"] == source["text"] and row["gold_label"] == source["label"]
        assert row["model_step"] == own.step_words and row["model_answer"] == own.answer
        assert row["answer"] == under.answer and row["changed"] == (under.answer != own.answer)
        assert row["correct"] == (under.answer == source["label"]) and row["follows"] is None  # no table
    assert [r["injected_step"] for r in rows[:3]] == pipe.step_space.shown


def test_stop_keeps_the_finished_chunks(pipes, tmp_path, monkeypatch):
    """Stop is heard between chunks: the rows already done come back, in file order, and no further call is made."""
    plan = plan_of(pipes["cls"], csv_file(tmp_path, ROWS * 2), "runner_up")
    monkeypatch.setattr(exp, "CHUNK", 2)
    calls = []
    records = exp.run(plan, runner_of(pipes["cls"], calls), stop=lambda: len(calls) >= 2)
    assert len(calls) == 2 and [r.index for r in records] == [0, 1, 2, 3] and plan.rows > 4
    assert exp.run(plan, runner_of(pipes["cls"]), stop=lambda: True) == []


def test_a_stop_reaches_only_its_own_sessions_running_experiment():
    from types import SimpleNamespace

    from cott_demo import experiment_tab

    mine, other = SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    experiment_tab.stop_run(mine)  # nothing running: nothing to stop, nothing kept for a later run
    with experiment_tab.stoppable(mine) as stop, experiment_tab.stoppable(other) as theirs:
        assert not stop.is_set()
        experiment_tab.stop_run(mine)
        assert stop.is_set() and not theirs.is_set()
    assert experiment_tab._STOPS == {}  # forgotten when the runs end


def test_result_rows_copy_each_injection():
    rec = CounterfactualRecord(index=0, text="t", step="s", step_prob=0.5, answer="a", answer_step="a", gold_step="g",
                               gold_label="a", correct=True,
                               injections=[Injection("x", True, "b", 0.25, True, False, False),
                                           Injection("y", True, "a", 0.75, False, True, True)])
    rows = exp.result_rows([rec], str)
    assert [[r[c] for c in exp.RECORD_COLUMNS] for r in rows] == [
        [1, "t", "s", 0.5, "a", "g", "a", True, "x", "b", 0.25, True, False, False, ""],
        [1, "t", "s", 0.5, "a", "g", "a", True, "y", "a", 0.75, False, True, True, ""]]
    rec.out_of_scope = True  # the checkpoint's out-of-scope verdict, in words on every row of the input
    assert {r["note"] for r in exp.result_rows([rec], str)} == {exp.SCOPE_VERDICT}


def test_result_rows_keep_an_input_without_injections():
    rec = CounterfactualRecord(index=4, text="t", step="s", step_prob=0.5, answer="a", answer_step="a")
    (row,) = exp.result_rows([rec], str)
    assert row["row"] == 5 and "injected_step" not in row
    shown, full = render.experiment_frames([row])
    assert list(full.columns) == exp.RECORD_COLUMNS and full["injected_step"][0] == ""


def test_csv_cells_are_formula_guarded_and_text_is_shortened_only_on_screen():
    rows = [{"row": 1, "text": "=HYPERLINK(\"x\")," + "y" * 100, "model_step": "+s", "answer": "@a",
             "answer_prob": 0.123456, "changed": True, "follows": None}]
    shown, full = render.experiment_frames(rows)
    assert full["text"][0].startswith("'=HYPERLINK") and full["model_step"][0] == "'+s" and full["answer"][0] == "'@a"
    assert full["answer_prob"][0] == 0.1235 and full["follows"][0] == "" and bool(full["changed"][0]) is True
    assert len(shown["text"][0]) == 80 and shown["text"][0].endswith("…")
    many = [dict(rows[0], row=k) for k in range(render.EXPERIMENT_SHOWN + 3)]
    shown, full = render.experiment_frames(many)
    assert len(shown) == render.EXPERIMENT_SHOWN and len(full) == render.EXPERIMENT_SHOWN + 3


# ---- plot data -----------------------------------------------------------------------------------
def record(i, answer, *injected):
    return CounterfactualRecord(index=i, text="t", step="banking", step_prob=0.9, answer=answer, answer_step=answer,
                                injections=[Injection(s, True, a, 0.5, a != answer, f) for s, a, f in injected])


def test_heatmap_columns_are_the_answers_steps_in_a_hierarchy():
    table = {"banking": ["balance", "transfer"], "travel": ["book_flight"]}
    records = [record(0, "balance", ("travel", "book_flight", True)),
               record(1, "balance", ("travel", "balance", False)),
               record(2, "transfer", ("banking", "transfer", True)), record(3, "x", ("travel", "weird", None))]
    data = exp.heatmap_data(records, table, str)
    assert data["hierarchy"] and data["steps"] == ["travel", "banking"]
    assert data["columns"] == ["banking", "travel", exp.OTHER]
    assert data["counts"] == [[1, 1, 1], [1, 0, 0]]
    assert data["shares"][0] == pytest.approx([1 / 3] * 3)
    flat = exp.heatmap_data(records, {"Peop | Org": ["Work_For", "no_relation"], "Loc | Loc": ["no_relation"]}, str)
    assert not flat["hierarchy"] and set(flat["columns"]) == {"book_flight", "balance", "transfer", "weird"}


def test_plots_cap_their_steps_and_escape_labels(monkeypatch):
    monkeypatch.setattr(exp, "MAX_PLOT_STEPS", 2)
    evil = "<b>x</b>"
    records = [record(0, "a", (evil, "a", True), ("s2", "b", False), ("s3", "b", None)),
               record(1, "a", (evil, "b", False))]
    data = exp.heatmap_data(records, {}, str)
    assert data["steps"] == [evil, "s2"] and data["steps_total"] == 3
    summ = exp.summary(records)
    rates = exp.rates_data(summ, str)
    assert rates["steps"] == [evil, "s2"] and rates["flip_rate"] == [0.5, 1.0] and rates["following_rate"] == [0.5, 0.0]
    for fig in (go.Figure(plots.injection_heatmap(data, evil)), go.Figure(plots.rate_bars(rates))):
        text = json.dumps(fig.to_plotly_json(), default=str, ensure_ascii=False)
        assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
        assert "2 most injected of 3" in fig.layout.title.text
    assert go.Figure(plots.injection_heatmap(exp.heatmap_data([], {}, str), "")).layout.annotations  # a placeholder


def test_cards_show_the_rates_and_accuracy_only_with_labels():
    labelled = CounterfactualRecord(0, "t", "s", 0.9, "a", "a", [Injection("s2", True, "b", 0.5, True, True, False)],
                                    gold_label="a", correct=True)
    with_labels = exp.summary([labelled])
    cards = render.experiment_cards(with_labels)
    for title in ("Inputs", "Injections", "Flip rate", "Step-following rate", "Accuracy under the injected steps"):
        assert title in cards
    assert "100.0%" in cards and "0.0%" in cards
    plain = render.experiment_cards(exp.summary([record(0, "a", ("s", "b", None))]))
    assert "Accuracy" not in plain and "no step-answer table" in plain


def test_experiment_logic_needs_no_gradio():
    code = "import sys, cott_demo.experiment, cott_demo.render, cott_demo.plots; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---- the tab's event, as Gradio wires it ---------------------------------------------------------
@pytest.fixture(scope="module")
def demo(ckpts):
    layout = pytest.importorskip("cott_demo.layout", reason="gradio is not installed")
    return layout.build_demo([ckpts["cls"], ckpts["rel"], ckpts["table"]], examples={})


def event(demo, api: str, *args, **kw) -> list:
    fn = next(f for f in demo.fns.values() if f.api_name == api)
    out = fn.fn(*args, **kw)
    return [out.get(c) for c in fn.outputs] if isinstance(out, dict) else list(out)


class Progress:
    def __init__(self):
        self.calls = []

    def __call__(self, fraction, desc=None):
        self.calls.append((fraction, desc))


def test_the_event_runs_in_chunks_with_progress_and_writes_the_csv(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(exp, "CHUNK", 2)
    rows = ROWS + [{"text": "=1+1 what is the weather", "step": "travel", "label": "weather"}]
    progress = Progress()
    status, cards, heatmap, rates, table, download = event(demo, "experiment", "table", csv_file(tmp_path, rows),
                                                           "gold", None, 0, False, progress=progress)
    assert status.startswith("✔") and "4 rows, 4 injections" in status
    assert [round(f, 2) for f, _ in progress.calls] == [0.0, 0.5, 1.0]
    assert progress.calls[0][1] == "rows 1–2 of 4" and progress.calls[-1][1] == "done"
    assert "Step-following rate" in cards and "Accuracy under the injected steps" in cards
    heatmap, rates = json.loads(heatmap.plot), json.loads(rates.plot)
    assert heatmap["data"][0]["type"] == "heatmap" and rates["data"][0]["orientation"] == "h"
    with open(download, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert [r["row"] for r in got] == ["1", "2", "3", "4"] and list(got[0]) == exp.RECORD_COLUMNS
    assert [r["injected_step"] for r in got] == [r["step"] for r in rows] == [r["gold_step"] for r in got]
    assert got[3]["text"] == "'=1+1 what is the weather" and got[0]["follows"] in ("True", "False")
    assert len(table) == 4


@pytest.mark.parametrize("name,content,policy,step,expected", [
    ("a.csv", "text\nwhat is my balance\n", "fixed", "nonsense", "is not a step this model knows"),
    ("empty.csv", "", "random_wrong", None, "the file is empty"),
    ("cols.csv", "sentence\nhello\n", "random_wrong", None, 'no "text" column'),
    ("partial.csv", "text,step\nhello,banking\nworld,\n", "given", None, "row 2 (line 3) has none"),
    ("huge.csv", "text\n" + "hi\n" * 100_000, "random_wrong", None, "100,000 rows; the limit is 2,000"),
])
def test_bad_input_is_refused_before_any_model_work(demo, tmp_path, monkeypatch, name, content, policy, step, expected):
    import cott_demo.experiment_tab as experiment_tab
    import gradio as gr

    monkeypatch.setattr(gr, "Warning", lambda *a, **kw: None)
    monkeypatch.setattr(experiment_tab, "run_counterfactuals", lambda *a, **kw: pytest.fail("the model ran"))
    status, cards, heatmap, rates, table, download = event(demo, "experiment", "tinyintent",
                                                           write(tmp_path, name, content), policy, step, 0, False,
                                                           progress=Progress())
    assert status.startswith("✖") and expected in status.replace("\\", "")
    assert download is None and table is None


def test_no_file_and_unknown_model(demo, monkeypatch):
    import gradio as gr

    monkeypatch.setattr(gr, "Warning", lambda *a, **kw: None)
    status, *_ = event(demo, "experiment", "tinyintent", None, "runner_up", None, 0, False, progress=Progress())
    assert status.startswith("✖") and "Upload" in status
    status, *_ = event(demo, "experiment", "nope", None, "runner_up", None, 0, False, progress=Progress())
    assert status.startswith("✖") and "Unknown model" in status


def test_the_event_has_its_own_queue_of_one(demo):
    fns = {f.api_name: f for f in demo.fns.values()}
    assert fns["experiment"].concurrency_limit == 1
    assert fns["experiment"].concurrency_id not in (fns["predict"].concurrency_id, fns["batch"].concurrency_id)


# ---- the out-of-scope monitor (Ask and Batch) ----------------------------------------------------
@pytest.fixture(scope="module")
def scoped(tmp_path_factory, ckpts):
    """The tiny classifier with an out-of-scope fit that flags every input (max p̃ is never above 2)."""
    import shutil

    root = tmp_path_factory.mktemp("scoped") / "tinyscope"
    shutil.copytree(ckpts["cls"], root)
    update_config(root, out_of_scope={"signal": "max_rectified", "threshold": 2.0, "fit_on": "a test"})
    layout = pytest.importorskip("cott_demo.layout", reason="gradio is not installed")
    return layout.build_demo([str(root), ckpts["cls"]], examples={})


def test_out_of_scope_message_only_with_a_fit_that_flags(scoped, tmp_path):
    status, step_md, *_, raw = event(scoped, "predict", "tinyscope", "what is my balance", 0.5)
    assert render.OUT_OF_SCOPE in status and "threshold 2.000" in status and "max p̃(y|x)" in status
    assert raw["out_of_scope"] is True and 0 < raw["scope_score"] <= 1 and raw["scope_threshold"] == 2.0
    assert "Reasoning monitor" in step_md  # the p(Î|x) monitor is still there
    _, plain_md, *_, plain = event(scoped, "predict", "tinyintent", "what is my balance", 0.5)
    assert render.OUT_OF_SCOPE not in plain_md and "Reasoning monitor" in plain_md
    assert plain["out_of_scope"] is None and plain["scope_score"] is None
    path = write(tmp_path, "rows.csv", "text\nwhat is my balance\n")
    status, table, _ = event(scoped, "batch", "tinyscope", path, 0.0)
    assert table["flag"][0] == "⚠ out of scope" and "1 out of scope" in status
    status, table, _ = event(scoped, "batch", "tinyintent", path, 0.0)
    assert table["flag"][0] == "" and "out of scope" not in status


def test_out_of_scope_message_is_escaped():
    from types import SimpleNamespace

    pred = SimpleNamespace(out_of_scope=True, scope_score=-1.5)
    md = render.scope_md(pred, {"signal": "<b>x</b>", "threshold": -0.5, "fit_on": "<script>"})
    assert "<b>" not in md and "<script" not in md and "-1.500" in md and "-0.500" in md
    assert render.scope_md(SimpleNamespace(out_of_scope=False, scope_score=0.1), {"threshold": 0}) == ""
    assert render.scope_md(SimpleNamespace(out_of_scope=None, scope_score=None), None) == ""


def test_shipped_checkpoint_keeps_its_fit():
    config = json.loads((ROOT / "assets" / "clinc150" / "cott.json").read_text(encoding="utf-8"))
    if "out_of_scope" not in config:
        pytest.skip("no shipped CLINC150 checkpoint with an out-of-scope fit")
    assert config["out_of_scope"]["signal"] in render.SCOPE_SIGNALS


def test_flat_heatmap_keeps_the_most_frequent_answers_and_counts_the_rest_as_other(monkeypatch):
    monkeypatch.setattr(exp, "MAX_PLOT_ANSWERS", 2)
    records = [record(0, "a", ("s1", "b", True), ("s1", "b", True), ("s1", "a", False)),
               record(1, "a", ("s2", "c", True), ("s1", "d", True))]
    data = exp.heatmap_data(records, {}, str.upper)  # no step-answer table: columns are answers, not steps
    assert data["steps"] == ["S1", "S2"] and data["columns"] == ["b", "a", exp.OTHER]
    assert data["counts"] == [[2, 1, 1], [0, 0, 1]] and data["shares"][1] == [0.0, 0.0, 1.0]
    assert not data["hierarchy"] and data["steps_total"] == 2
    tree = exp.heatmap_data(records, {"s1": ["a", "b"], "s2": ["c"]}, str.upper)  # "d" belongs to no step
    assert tree["columns"] == ["S1", "S2", exp.OTHER] and tree["counts"] == [[3, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize("err", [OSError("disk gone"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")])
def test_an_unreadable_upload_is_named_by_its_file_name(monkeypatch, tmp_path, err):
    path = csv_file(tmp_path, ROWS)

    def fail(_):
        raise err

    monkeypatch.setattr(exp, "read_rows", fail)
    with pytest.raises(inputs.InputError) as caught:
        exp.read_file(path)
    name = Path(path).name
    assert str(caught.value) == f"{name}: could not be read ({err}); upload a UTF-8 CSV or JSON-lines file."
