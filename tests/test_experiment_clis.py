"""The experiment command lines run end to end on a tiny checkpoint: ``experiments.out_of_scope`` (signals, AUROC,
thresholds fitted on validation, ``--write``) and ``experiments.counterfactual`` (records streamed chunk by chunk,
the summary, ``--data`` and ``--file`` inputs, refusals) and ``experiments.attribution`` (deletion curves against
random words, from a split or a file)."""
from __future__ import annotations

import json

import pytest

from cott import CoTTPipeline, monitor, save_checkpoint
from cott.checkpoint import read_config
from cott.counterfactual import CounterfactualRecord, Injection, summarise
from cott.inference import reason
from helpers import TOY, toy_examples, toy_meta, toy_model

IN_SCOPE = {"val": toy_examples(9, seed=3), "test": toy_examples(8, seed=4)}
OUTSIDE = {"val": ["ada works for acme", "my friend lives in paris", "the computer science area", "no relation to this",
                   "a person of the organization", "based in paris"],
           "test": ["ada lives in paris", "killed near the house", "the domain of acme", "a location", "intent"]}


@pytest.fixture(scope="module")
def checkpoint(lively_bert, toy_data, tmp_path_factory):
    """An untrained CoTT model of the toy task over the lively BERT (its scores differ from text to text)."""
    model, _ = toy_model(lively_bert, toy_data)
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "cott", toy_meta(lively_bert))


@pytest.fixture(scope="module")
def clinc(tmp_path_factory):
    """A CLINC150-shaped folder: data_full.json (val, test, oos_val, oos_test) and domains.json."""
    folder = tmp_path_factory.mktemp("clinc")
    data = {split: [[e["text"], e["label"]] for e in rows] for split, rows in IN_SCOPE.items()}
    data |= {f"oos_{split}": [[t, "oos"] for t in texts] for split, texts in OUTSIDE.items()}
    (folder / "data_full.json").write_text(json.dumps(data))
    (folder / "domains.json").write_text(json.dumps(TOY))
    return folder


def _alone(model, text: str, max_length: int) -> dict[str, float]:
    r = reason(model, [{"text": text}], None, max_length)
    return {k: float(v[0]) for k, v in monitor.signal_scores(r["p_rectified"], r["p_answer"], r.get("p_step_hat")).items()}


def test_out_of_scope_scores_are_each_texts_own_in_the_order_given(checkpoint):
    from cott.checkpoint import load_checkpoint
    from experiments.out_of_scope import scores

    model, _ = load_checkpoint(checkpoint)
    texts = ["a big red car near the house today", "cat", "i saw a dog", "the small bus", "my friend likes this horse"]
    got = scores(model, texts, 48, batch_size=2)  # sorted by prompt length and chunked inside, read back in order
    assert set(got) == set(monitor.SIGNALS)
    for i, text in enumerate(texts):
        for signal, value in _alone(model, text, 48).items():
            assert got[signal][i] == pytest.approx(value, abs=1e-5), (text, signal)
    assert len({round(v, 6) for v in got["max_rectified"]}) > 1  # texts score differently: an order mix-up shows


def test_out_of_scope_cli_fits_on_validation_reads_test_and_writes_the_best_signal(checkpoint, clinc, tmp_path,
                                                                                 capsys):
    from cott.checkpoint import load_checkpoint
    from experiments.out_of_scope import RETENTION, main

    output = tmp_path / "figures" / "oos.json"
    [result] = main(["--checkpoints", str(checkpoint), "--data", str(clinc), "--output", str(output), "--write"])
    assert json.loads(output.read_text()) == [result]
    model, config = load_checkpoint(checkpoint)
    own = {split: ([_alone(model, e["text"], config.max_length) for e in IN_SCOPE[split]],
                   [_alone(model, t, config.max_length) for t in OUTSIDE[split]]) for split in ("val", "test")}
    assert result["method"] == "cott" and set(result["signals"]) == set(monitor.SIGNALS)
    for signal, row in result["signals"].items():
        got = {split: ([s[signal] for s in inside], [s[signal] for s in outside]) for split, (inside, outside) in own.items()}
        for split, (inside, outside) in got.items():
            assert row[split]["in_scope"] == len(IN_SCOPE[split]) and row[split]["out_of_scope"] == len(OUTSIDE[split])
            assert row[split]["auroc"] == pytest.approx(monitor.auroc(inside, outside), abs=1e-6)
            own_threshold = monitor.threshold_at_retention(inside, RETENTION)
            assert row[split]["recall_at_95"] == pytest.approx(
                sum(s < own_threshold for s in outside) / len(outside), abs=1e-6)
        val_in = got["val"][0]
        assert row["val_threshold"] == pytest.approx(monitor.threshold_at_retention(val_in, RETENTION), abs=1e-6)
        assert sum(s >= row["val_threshold"] for s in val_in) >= RETENTION * len(val_in) - 1e-9
        test_in, test_out = got["test"]
        t = row["test_with_val_threshold"]  # test read with the validation threshold, never its own
        assert t["recall"] == pytest.approx(sum(s < row["val_threshold"] for s in test_out) / len(test_out), abs=1e-6)
        assert t["in_scope_kept"] == pytest.approx(sum(s >= row["val_threshold"] for s in test_in) / len(test_in),
                                                   abs=1e-6)
    vals = {s: row["val"]["auroc"] for s, row in result["signals"].items()}
    best = result["best_on_val"]
    assert vals[best] == max(vals.values())
    written = read_config(checkpoint).out_of_scope
    assert written["signal"] == best and written["threshold"] == result["signals"][best]["val_threshold"]
    assert written["retention"] == RETENTION and written["val_auroc"] == vals[best]
    assert "experiments.out_of_scope" in written["command"] and "--write" in written["command"]
    table = capsys.readouterr().out.splitlines()
    rows = [line for line in table if line.startswith(f"| {checkpoint} ")]
    assert len(rows) == len(monitor.SIGNALS) and sum("(best on val)" in line for line in rows) == 1
    assert f"| {best} (best on val) |" in next(line for line in rows if "(best on val)" in line)


def _records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def test_counterfactual_cli_streams_every_input_once_in_order_across_chunks(checkpoint, toy_data, tmp_path,
                                                                             monkeypatch):
    import experiments.counterfactual as cli
    from cott.data import load_jsonl

    monkeypatch.setattr(cli, "CHUNK", 3)  # 7 inputs: chunks of 3, 3 and 1
    out = tmp_path / "gold"
    summary = cli.main(["--checkpoint", str(checkpoint), "--data", str(toy_data), "--split", "val", "--policy", "gold",
                        "--max-examples", "7", "--output-dir", str(out), "--batch-size", "2", "--no-plots"])
    val = load_jsonl(toy_data, "val")[:7]
    records = _records(out)
    assert [r["index"] for r in records] == list(range(7)) and [r["text"] for r in records] == [e.fields["text"] for e in val]
    assert [r["gold_step"] for r in records] == [e.step[0] for e in val]
    assert [r["gold_label"] for r in records] == [e.label for e in val]
    assert all([i["step"] for i in r["injections"]] == [r["gold_step"]] for r in records)  # the gold policy
    pipe = CoTTPipeline.from_pretrained(str(checkpoint))
    under_gold = pipe.counterfactuals([e.fields for e in val], "gold", gold_steps=[e.step for e in val],
                                      labels=[e.label for e in val])
    assert [r["injections"][0]["answer"] for r in records] == [r.injections[0].answer for r in under_gold]
    again = [CounterfactualRecord(**{**r, "injections": [Injection(**i) for i in r["injections"]]}) for r in records]
    stored = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(summary)) and summary["inputs"] == 7 and summary["injections"] == 7
    assert {k: summary[k] for k in summarise(again)} == json.loads(json.dumps(summarise(again)))
    assert summary["policy"] == "gold" and summary["source"] == f"{toy_data} (val)"
    assert not list(out.glob("*.png"))  # --no-plots; without it the plots are written (below)


def test_counterfactual_cli_reads_a_files_steps_and_plots(checkpoint, tmp_path, monkeypatch):
    import experiments.counterfactual as cli

    monkeypatch.setattr(cli, "CHUNK", 2)  # each chunk injects its own rows' steps

    rows = [{"text": "a big red car", "step": "animal", "label": "car"},
            {"text": "i saw a cat today", "step": "vehicle", "label": "cat"},
            {"text": "the small dog", "step": "vehicle", "label": "ünknown"}]
    file = tmp_path / "rows.jsonl"
    file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "given"
    summary = cli.main(["--checkpoint", str(checkpoint), "--file", str(file), "--policy", "given",
                        "--output-dir", str(out)])
    records = _records(out)
    assert [r["text"] for r in records] == [r["text"] for r in rows]
    assert [[i["step"] for i in r["injections"]] for r in records] == [[r["step"]] for r in rows]
    assert [r["gold_label"] for r in records] == ["car", "cat", None]  # a label the checkpoint does not know: none
    assert summary["source"] == str(file) and summary["inputs"] == 3
    assert sorted(p.name for p in out.glob("*.png")) == ["rates_per_step.png", "step_to_answer.png"]


@pytest.mark.parametrize("argv, message", [
    (["--policy", "fixed"], "--policy fixed needs --step"),
    (["--policy", "given"], "--policy given needs a step in every row"),
])
def test_counterfactual_cli_refuses_a_policy_without_its_steps(checkpoint, tmp_path, capsys, argv, message):
    import experiments.counterfactual as cli

    file = tmp_path / "rows.csv"
    file.write_text("text,step\na big red car,animal\nthe small dog,\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--checkpoint", str(checkpoint), "--file", str(file), "--output-dir", str(tmp_path / "o"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o" / "records.jsonl").exists()



def test_the_pipeline_flags_each_input_by_its_own_score_strictly_below_the_fitted_threshold(checkpoint, tmp_path):
    """What ``--write`` stores is read by the pipeline: each input of a batch gets its own score of the fitted signal,
    and is flagged when that score lies strictly below the threshold (an input at the threshold is kept, as
    ``monitor.recall_at`` counts it)."""
    import shutil

    from cott.checkpoint import update_config

    copy = shutil.copytree(checkpoint, tmp_path / "scoped")
    texts = ["a big red car near the house today", "cat", "i saw a dog", "the small bus", "my friend likes this horse"]
    update_config(copy, out_of_scope={"signal": "max_rectified", "threshold": 0.0})
    pipe = CoTTPipeline.from_pretrained(str(copy))
    scores = [p.scope_score for p in pipe(texts)]
    alone = [_alone(pipe.model, t, pipe.max_length)["max_rectified"] for t in texts]
    assert scores == pytest.approx(alone, abs=1e-5) and len(set(scores)) == len(texts)
    middle = sorted(scores)[2]
    update_config(copy, out_of_scope={"signal": "max_rectified", "threshold": middle})
    preds = CoTTPipeline.from_pretrained(str(copy))(texts)
    assert [p.scope_score for p in preds] == scores
    assert [p.out_of_scope for p in preds] == [s < middle for s in scores]  # two flagged; the one at it is kept


def test_attribution_cli_reads_the_first_inputs_and_scores_each_method_against_random(checkpoint, toy_data, tmp_path):
    import experiments.attribution as cli
    from cott.data import load_jsonl

    out = tmp_path / "attribution.json"
    summary = cli.main(["--checkpoint", str(checkpoint), "--data", str(toy_data), "--split", "val", "--max-examples", "3",
                        "--methods", "occlusion", "--k", "2", "--output", str(out), "--plot", str(tmp_path / "curves.png")])
    assert summary["texts"] == 3 and summary["k"] == 2 and summary["source"] == f"{toy_data} (val)"
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(summary))
    assert (tmp_path / "curves.png").stat().st_size > 0
    for target in summary["targets"].values():
        assert set(target) == {"occlusion", "random"}
        assert all(len(row["probs"]) == 3 for row in target.values())  # k = 0, 1, 2
        assert "area_vs_random" in target["occlusion"] and "area_vs_random" not in target["random"]
    file = tmp_path / "texts.csv"
    file.write_text("text\n" + "\n".join(e.fields["text"] for e in load_jsonl(toy_data, "val")[:2]) + "\n",
                    encoding="utf-8")
    again = cli.main(["--checkpoint", str(checkpoint), "--file", str(file), "--methods", "occlusion", "--k", "2"])
    assert again["texts"] == 2 and again["source"] == str(file)
