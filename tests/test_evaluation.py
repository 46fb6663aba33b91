"""cott.evaluation against a one-batch reading in the given order of the same untrained (lively) model: every answer mode's
scores, the step's accuracy, the runner-up step's sensitivity, the seeded following rate, the hierarchy's
inconsistency, accuracy at coverage (ties in input order), relation scores; the examples it drops and says so;
the summary's lines, the headline number and the recorded result."""
from __future__ import annotations

import logging
import random
import time

import pytest
import torch

from helpers import TOY

from cott import get_task, metrics
from cott.batching import prompt_lengths
from cott.examples import Example
from cott.evaluation import evaluate, headline, known_examples, recorded, summary
from cott.inference import reason
from cott.rectify import rectify
from cott.steps import MODES, final_distribution
from train.build import build_model

THINGS = [t for things in TOY.values() for t in things]
KINDS = {t: k for k, things in TOY.items() for t in things}
STEPS = ["animal", "house", "kind", "vehicle"]  # four steps: a random wrong one is a real choice, top-3 < all
FRAMES = ["i saw a {} today", "there is a {} near the house", "my friend likes this {}", "a big red {}", "the {}"]
STEP_ANSWERS = {"animal": TOY["animal"], "vehicle": TOY["vehicle"], "house": ["car", "cat"], "kind": ["dog"]}
HIERARCHY = {t: KINDS[t] for t in THINGS}
MAX_LENGTH = 48


@pytest.fixture(scope="module")
def model(lively_bert):
    torch.manual_seed(0)
    return build_model(get_task("jsonl"), "cott", str(lively_bert), STEPS, THINGS)


@pytest.fixture(scope="module")
def examples():
    """Texts of several lengths (evaluate reorders them), gold steps of every kind, some gold steps "house"."""
    rows = [(frame.format(t), t) for frame in FRAMES for t in THINGS]
    return [Example({"text": text}, (KINDS[t] if j % 3 else STEPS[j % 2 + 1],), t, {}) for j, (text, t) in enumerate(rows)]


def _flat(curve):
    return [x for point in curve for x in point]


def _reference(model, examples, answer_mode, seed=0):
    """What evaluate should find, read in one batch in the given order (the runner-up step injected by hand), and
    the following rate's random wrong steps drawn in evaluate's order, shortest prompt first."""
    known, labels = model.known_steps(), model.answer.labels
    fields = [e.fields for e in examples]
    r = reason(model, fields, None, MAX_LENGTH, 3)
    runner_up = [known[int(p.topk(2).indices[1])] for p in r["p_steps"]]
    under = reason(model, fields, [model.step_phrase(s) for s in runner_up], MAX_LENGTH)["p_answer_step"]
    runner = {"p_answer": r["p_answer"], "p_answer_step": under, "p_rectified": rectify(r["p_step_hat"], under, r["p_answer"])}
    rows = [{**{m: int(final_distribution(r, m)[i].argmax()) for m in MODES},
             "final": int(final_distribution(r, answer_mode)[i].argmax()),
             "runner": int(final_distribution(runner, answer_mode)[i].argmax()), "runner_step2": int(under[i].argmax()),
             "step_hat": int(r["step_hat"][i]), "confidence": float(r["p_step_hat"][i])} for i in range(len(examples))]
    rng, wrong = random.Random(seed), {}
    for i in sorted(range(len(examples)), key=prompt_lengths(model, examples, MAX_LENGTH).__getitem__):
        pool = [j for j in range(len(known)) if j != rows[i]["step_hat"] and known[j] != examples[i].step]
        if pool:
            wrong[i] = known[rng.choice(pool)]
    chosen = sorted(wrong)
    p = reason(model, [fields[i] for i in chosen], [model.step_phrase(wrong[i]) for i in chosen], MAX_LENGTH)["p_answer_step"]
    follows = [labels[int(p[k].argmax())] in STEP_ANSWERS[wrong[i][0]] for k, i in enumerate(chosen)]
    return rows, follows


def test_evaluate_reads_every_score_as_one_batch_in_the_given_order_would(model, examples):
    answer_mode = "rectified"
    labels, known = model.answer.labels, model.known_steps()
    started = time.perf_counter()
    res = evaluate(model, examples, "classification", answer_mode, MAX_LENGTH, batch_size=7, progress=False,
                   step_answers=STEP_ANSWERS, hierarchy=HIERARCHY, dropped=3)
    took = time.perf_counter() - started
    rows, follows = _reference(model, examples, answer_mode)
    gold = [labels.index(e.label) for e in examples]
    n = len(examples)
    assert (res["examples"], res["dropped"], res["answer_mode"]) == (n, 3, answer_mode)
    assert isinstance(res["seconds"], float) and 0 < res["seconds"] <= took + 0.01  # the time it took, to 10 ms
    assert round(res["seconds"], 2) == res["seconds"]
    for m in MODES:
        assert res[m] == pytest.approx(metrics.classification_scores(gold, [row[m] for row in rows], len(labels)))
    final = [row["final"] for row in rows]
    assert 0 < sum(f == g for f, g in zip(final, gold)) < n  # neither all right nor all wrong
    assert res["answer"] == pytest.approx(metrics.classification_scores(gold, final, len(labels)))
    assert res["step_accuracy"] == pytest.approx(sum(known[row["step_hat"]] == e.step for row, e in zip(rows, examples)) / n)
    assert 0 < res["step_accuracy"] < 1
    assert res["step_sensitivity"] == pytest.approx(sum(row["final"] != row["runner"] for row in rows) / n)
    assert res["step2_sensitivity"] == pytest.approx(sum(row["step2"] != row["runner_step2"] for row in rows) / n)
    assert 0 < res["step2_sensitivity"] < 1
    assert res["following_rate"] == pytest.approx(sum(follows) / len(follows))
    assert res["inconsistency_rate"] == pytest.approx(metrics.inconsistency_rate(
        [labels[f] for f in final], [known[row["step_hat"]][0] for row in rows], HIERARCHY))
    correct, confidence = [f == g for f, g in zip(final, gold)], [row["confidence"] for row in rows]
    assert res["coverage_signal"] == "p_step"
    assert res["accuracy_at_coverage"] == pytest.approx(metrics.accuracy_at_coverage(correct, confidence))
    assert _flat(res["coverage_curve"]) == pytest.approx(_flat(metrics.coverage_curve(correct, confidence)))
    assert "per_relation" not in res
    assert headline(res, "classification") == res["answer"]["accuracy"]
    assert recorded(res) == {k: v for k, v in res.items() if k != "coverage_curve"} and "coverage_curve" in res


def test_the_following_rate_draws_its_wrong_steps_with_the_seed(model, examples):
    rates = {}
    examples = examples[::2]
    for seed in range(3):
        res = evaluate(model, examples, "classification", "step2", MAX_LENGTH, batch_size=64, top_k=1, progress=False,
                       step_answers=STEP_ANSWERS, seed=seed)
        _, follows = _reference(model, examples, "step2", seed)
        assert res["following_rate"] == pytest.approx(sum(follows) / len(follows))
        rates[seed] = res["following_rate"]
    assert len(set(rates.values())) > 1  # the seed matters
    default = evaluate(model, examples, "classification", "step2", MAX_LENGTH, top_k=1, progress=False,
                       step_answers=STEP_ANSWERS)
    assert default["following_rate"] == rates[0]  # seed 0 by default
    assert default["dropped"] == 0


def test_by_default_the_runner_up_is_read_and_the_marginal_spans_the_top_three_steps(model, examples):
    res = evaluate(model, examples, "classification", "marginal", MAX_LENGTH, progress=False)
    rows, _ = _reference(model, examples, "marginal")
    gold = [model.answer.labels.index(e.label) for e in examples]
    assert res["marginal"] == pytest.approx(
        metrics.classification_scores(gold, [row["marginal"] for row in rows], len(model.answer.labels)))
    assert res["step_sensitivity"] == pytest.approx(sum(row["final"] != row["runner"] for row in rows) / len(rows))
    assert "following_rate" not in res and "inconsistency_rate" not in res  # asked for by step_answers, hierarchy


def test_the_following_rate_tries_only_inputs_with_a_wrong_step_left_and_top_1_reads_no_runner_up(lively_bert, examples):
    """With two steps an input whose Î is not its gold step has no step that is neither (nothing to try, left out of
    the rate); one read right is tried under the other step. ``top_k=1`` reads no runner-up: no sensitivities."""
    torch.manual_seed(0)
    two = build_model(get_task("jsonl"), "cott", str(lively_bert), ["animal", "vehicle"], THINGS)
    chosen = [Example(e.fields, (KINDS[e.label],), e.label, {}) for e in examples]
    known, labels = two.known_steps(), two.answer.labels
    hats = reason(two, [e.fields for e in chosen], None, MAX_LENGTH)["step_hat"].tolist()
    tried = [(e, known[1 - h]) for e, h in zip(chosen, hats) if known[h] == e.step]
    assert 0 < len(tried) < len(chosen)  # some inputs have a wrong step left, some none
    under = reason(two, [e.fields for e, _ in tried], [two.step_phrase(s) for _, s in tried], MAX_LENGTH)["p_answer_step"]
    follows = [labels[int(p.argmax())] in STEP_ANSWERS[s[0]] for p, (_, s) in zip(under, tried)]
    assert 0 < sum(follows) < len(follows)
    res = evaluate(two, chosen, "classification", "rectified", MAX_LENGTH, batch_size=6, top_k=1, progress=False,
                   step_answers=STEP_ANSWERS)
    assert res["following_rate"] == pytest.approx(sum(follows) / len(follows))
    assert res["step_accuracy"] == pytest.approx(len(tried) / len(chosen))
    assert "step_sensitivity" not in res and "step2_sensitivity" not in res


def test_a_model_answering_directly_has_no_step_sensitivity(model, examples):
    res = evaluate(model, examples[:6], "classification", "direct", MAX_LENGTH, batch_size=4, progress=False)
    assert res["step_sensitivity"] is None
    assert res["step2_sensitivity"] is not None
    assert "  step_sensitivity n/a (the model answers directly)" in summary(res).splitlines()


def test_one_step_models_rank_tied_coverage_in_input_order(lively_bert, examples):
    """p(Î|x) is 1 for every input of a one-step model: accuracy at coverage keeps the inputs given first."""
    torch.manual_seed(0)
    one = build_model(get_task("jsonl"), "cott", str(lively_bert), ["animal"], THINGS)
    texts = [e.fields for e in examples[::-2]]  # not in length order
    labels = one.answer.labels
    own = [labels[int(p.argmax())] for p in reason(one, texts, None, MAX_LENGTH)["p_answer_step"]]
    half = len(texts) // 2  # the first half answered right, the rest wrong
    chosen = [Example(f, ("animal",), y if k < half else next(t for t in THINGS if t != y), {})
              for k, (f, y) in enumerate(zip(texts, own))]
    res = evaluate(one, chosen, "classification", "step2", MAX_LENGTH, batch_size=3, progress=False,
                   step_answers=STEP_ANSWERS)
    assert "following_rate" not in res  # one step: never a wrong step to try
    correct = [k < half for k in range(len(chosen))]
    assert res["accuracy_at_coverage"]["0.50"] == 7 / 8  # 8 of 15 kept: the 7 right ones first, then a wrong one
    assert res["accuracy_at_coverage"] == pytest.approx(metrics.accuracy_at_coverage(correct, [1.0] * len(correct)))
    assert _flat(res["coverage_curve"]) == pytest.approx(_flat(metrics.coverage_curve(correct, [1.0] * len(correct))))
    longest_first = chosen[::-1]  # the wrong ones first: evaluate reads them last (shortest prompt first)
    res = evaluate(one, longest_first, "classification", "step2", MAX_LENGTH, batch_size=4, progress=False)
    assert res["accuracy_at_coverage"]["0.50"] == 0  # 8 of 15 kept: the 8 wrong ones given first
    assert res["accuracy_at_coverage"] == pytest.approx(metrics.accuracy_at_coverage(correct[::-1], [1.0] * len(correct)))


def test_a_baseline_is_scored_in_direct_mode_with_its_own_confidence(lively_bert, examples):
    torch.manual_seed(0)
    baseline = build_model(get_task("jsonl"), "prompt", str(lively_bert), STEPS, THINGS)
    res = evaluate(baseline, examples, "classification", "rectified", MAX_LENGTH, batch_size=5, progress=False,
                   step_answers=STEP_ANSWERS, hierarchy=HIERARCHY)
    labels = baseline.answer.labels
    gold = [labels.index(e.label) for e in examples]
    probs = [reason(baseline, [e.fields], None, MAX_LENGTH)["p_answer"][0] for e in examples]
    pred = [int(p.argmax()) for p in probs]
    assert [m for m in MODES if m in res] == ["direct"]
    assert res["direct"] == res["answer"] == pytest.approx(metrics.classification_scores(gold, pred, len(labels)))
    assert res["coverage_signal"] == "max_direct"
    correct = [p == g for p, g in zip(pred, gold)]
    assert res["accuracy_at_coverage"] == pytest.approx(
        metrics.accuracy_at_coverage(correct, [float(p.max()) for p in probs]))
    for key in ("step_accuracy", "step_sensitivity", "step2_sensitivity", "following_rate", "inconsistency_rate"):
        assert key not in res


def test_relation_scores_leave_out_the_negative_answer_and_list_each_relation(model, examples):
    res = evaluate(model, examples, "relation", "rectified", MAX_LENGTH, batch_size=8, progress=False)
    rows, _ = _reference(model, examples, "rectified")
    labels = model.answer.labels
    gold, pred = [e.label for e in examples], [labels[row["final"]] for row in rows]
    assert res["answer"] == pytest.approx(metrics.relation_scores(gold, pred))
    assert res["step2"] == pytest.approx(metrics.relation_scores(gold, [labels[row["step2"]] for row in rows]))
    assert res["per_relation"] == metrics.relation_scores_per_label(gold, pred)
    assert headline(res, "relation") == res["answer"]["f1"]
    text = summary(res)
    for label, s in res["per_relation"].items():
        assert f"  {label:12s} precision {s['precision']:.4f}  recall {s['recall']:.4f}  f1 {s['f1']:.4f}  gold {s['support']}" in text


def test_nothing_to_evaluate_is_refused(model):
    with pytest.raises(ValueError, match="no examples to evaluate"):
        evaluate(model, [], "classification", "rectified", MAX_LENGTH, progress=False)


def test_examples_with_labels_unseen_in_training_are_dropped_and_counted(model, examples, caplog):
    unseen_answer = Example({"text": "a big red zebra"}, ("animal",), "zebra", {})
    unseen_step = Example({"text": "a big red car"}, ("boat",), "car", {})
    no_step = Example({"text": "the car"}, None, "car", {})
    given = [examples[0], unseen_answer, examples[1], unseen_step, no_step]
    with caplog.at_level(logging.WARNING, logger="cott.evaluation"):
        kept = known_examples(model, given, "test")
    assert kept == [examples[0], examples[1], no_step]
    assert caplog.messages == ["test: 2 of 5 examples have labels unseen in training and are skipped"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cott.evaluation"):
        assert known_examples(model, examples[:3], "val") == examples[:3]
    assert caplog.messages == []


def test_a_baseline_keeps_examples_whatever_their_step(lively_bert):
    torch.manual_seed(0)
    baseline = build_model(get_task("jsonl"), "prompt", str(lively_bert), STEPS, THINGS)
    odd = [Example({"text": "a big red car"}, ("boat",), "car", {})]
    assert known_examples(baseline, odd, "test") == odd


def test_the_summary_lists_each_mode_the_step_scores_and_accuracy_at_coverage(model, examples):
    res = evaluate(model, examples, "classification", "rectified", MAX_LENGTH, progress=False,
                   step_answers=STEP_ANSWERS, hierarchy=HIERARCHY, dropped=2)
    lines = summary(res).splitlines()
    assert lines[0] == f"{len(examples)} examples, answer mode rectified (2 left out: labels unseen in training)"
    for m in MODES:
        s = res[m]
        assert f"  {m:10s} accuracy {s['accuracy']:.4f}  micro_f1 {s['micro_f1']:.4f}  macro_f1 {s['macro_f1']:.4f}" in lines
    for key in ("step_accuracy", "step_sensitivity", "step2_sensitivity", "following_rate", "inconsistency_rate"):
        assert f"  {key} {res[key]:.4f}" in lines
    coverage = "  ".join(f"{c}: {a:.4f}" for c, a in res["accuracy_at_coverage"].items())
    assert lines[-1] == "  accuracy at coverage " + coverage
    res["dropped"] = 0
    assert summary(res).splitlines()[0] == f"{len(examples)} examples, answer mode rectified"


def test_a_progress_bar_named_evaluate_shows_by_default_and_is_cleared(model, examples, capsys):
    evaluate(model, examples[:4], "classification", "rectified", MAX_LENGTH, batch_size=2, top_k=1)
    err = capsys.readouterr().err
    assert "evaluate: " in err and err.endswith("\r")  # the bar, wiped when done: no finished bar left in a log
    evaluate(model, examples[:4], "classification", "rectified", MAX_LENGTH, batch_size=2, top_k=1, progress=False)
    assert capsys.readouterr().err == ""


def test_the_headline_is_relation_micro_f1_or_classification_accuracy():
    """Relation accuracy counts the many right "no_relation" answers; model selection reads micro-F1 without them."""
    result = {"answer": {"accuracy": 0.9, "f1": 0.4, "micro_f1": 0.6}}
    assert headline(result, "relation") == 0.4
    assert headline(result, "classification") == 0.9
