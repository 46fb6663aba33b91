"""The Compare tab: two models of one task under the same edited step, and one file on both (through gradio_client
on loopback), and its logic in cott_demo.compare."""
from __future__ import annotations

import pytest

from app_tiny import CLASSIFICATION, RELATION, build_tiny_checkpoint, free_port

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

import app  # noqa: E402
from cott.checkpoint import update_config  # noqa: E402
from cott_demo import compare  # noqa: E402
from cott_demo.inputs import InputError  # noqa: E402
from cott_demo.serving import load_models  # noqa: E402

TABLE = {"banking": ["balance", "transfer"], "travel": ["book_flight"], "utility": ["set_alarm", "timer", "weather"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    a = build_tiny_checkpoint(root / "a", CLASSIFICATION, "classification", seed=0)
    b = build_tiny_checkpoint(root / "b", CLASSIFICATION, "classification", seed=2)
    rel = build_tiny_checkpoint(root / "r", RELATION, "relation", seed=1)
    for path in (a, b):
        update_config(path, step_answers=TABLE)
    specs = [str(a), str(rel), str(b)]
    demo = app.build_demo(specs, examples={})
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    yield {"client": Client(f"http://127.0.0.1:{port}/", verbose=False), "models": load_models(specs)}
    demo.close()


def test_the_default_pair_is_two_models_of_one_task(served):
    assert compare.same_task(served["models"]) == ("tinyintent", "tinyintent (2)")
    assert compare.same_task({k: v for k, v in served["models"].items() if k != "tinyintent (2)"}) == (None, None)


def test_pairs_of_other_tasks_or_one_model_are_refused(served):
    with pytest.raises(InputError, match="different tasks"):
        compare.pair(served["models"], "tinyintent", "tinyrel")
    with pytest.raises(InputError, match="two different models"):
        compare.pair(served["models"], "tinyintent", "tinyintent")
    with pytest.raises(InputError, match="Unknown model"):
        compare.pair(served["models"], "tinyintent", "nope")


def test_same_text_same_step_on_both_models(served):
    status, table, plot_a, plot_b = served["client"].predict(
        "tinyintent", "tinyintent (2)", "what is my balance", "travel", api_name="/compare")
    assert status == "" and plot_a["type"] == "plotly" and plot_b["type"] == "plotly"
    lines = table.splitlines()
    assert "tinyintent" in lines[0] and "tinyintent \\(2\\)" in lines[0]
    under = next(line for line in lines if line.startswith("| answer under your step"))
    within = next(line for line in lines if line.startswith("| answer within your step"))
    for cell_answer, cell_within in zip(under.split("|")[2:4], within.split("|")[2:4]):
        answer = cell_answer.strip().split("**")[1].replace("\\_", "_")
        assert ("yes" in cell_within) == (answer in TABLE["travel"])  # the table says whether it follows the step


def test_free_text_step_is_escaped_and_follows_is_unknown(served):
    status, table, *_ = served["client"].predict(
        "tinyintent", "tinyintent (2)", "what is my balance", "<b>space</b> rockets", api_name="/compare")
    assert "read as plain text" in status and "<b>" not in table and "&lt;b&gt;space&lt;/b&gt; rockets" in table
    within = next(line for line in table.splitlines() if line.startswith("| answer within your step"))
    assert within.count("—") == 2


@pytest.mark.parametrize("a,b,text,step,expected", [
    ("tinyintent", "tinyrel", "what is my balance", "travel", "different tasks"),
    ("tinyintent", "tinyintent (2)", "", "travel", "text is empty"),
    ("tinyintent", "tinyintent (2)", "what is my balance", "", "step is empty"),
])
def test_bad_compare_requests_get_a_message(served, a, b, text, step, expected):
    status, table, plot_a, plot_b = served["client"].predict(a, b, text, step, api_name="/compare")
    assert expected in status and table == "" and plot_a is None


def test_one_file_on_both_models(served, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\nwhat is my balance,balance\nbook a flight to paris,book_flight\nset a timer,timer\n")
    status, rates = served["client"].predict("tinyintent", "tinyintent (2)", handle_file(str(path)), "random_wrong",
                                             None, 0, api_name="/compare_experiment")
    assert rates["headers"] == compare.RATE_COLUMNS
    assert [row[0] for row in rates["data"]] == ["tinyintent", "tinyintent (2)"]
    assert all(row[1] == 3 and row[2] == 3 and row[4].endswith("%") for row in rates["data"])
    status, rates = served["client"].predict("tinyintent", "tinyrel", handle_file(str(path)), "random_wrong", None, 0,
                                             api_name="/compare_experiment")
    assert "different tasks" in status and rates["headers"] == compare.RATE_COLUMNS and rates["data"] == []


def test_rates_match_the_experiment_summary(served):
    """The rows of experiment_rates are the library's summaries of each model's records, in model order."""
    seen = []

    def runner(spec, inputs, policy, **kwargs):
        seen.append(spec)
        return served["models"][next(n for n, m in served["models"].items() if m.spec == spec)].pipe.counterfactuals(
            inputs, policy, **kwargs)

    rows = [{"text": "what is my balance", "label": "balance"}, {"text": "set a timer", "label": "timer"}]
    ticks = []
    out, _ = compare.experiment_rates(served["models"], ("tinyintent", "tinyintent (2)"), rows, "runner_up", runner,
                                      progress=lambda done, total: ticks.append((done, total)))
    assert [r["model"] for r in out] == ["tinyintent", "tinyintent (2)"] and len(set(seen)) == 2
    assert ticks[-1] == (4, 4) and all(total == 4 for _, total in ticks)
