"""Counterfactual experiments: policies, the answers under injected steps, flip and step-following rates."""
import random
from dataclasses import replace

import pytest
import torch

from cott import CoTTPipeline
from cott.batching import TrainingBatcher
from cott import get_task
from cott.counterfactual import CounterfactualRecord, Injection, constrain, run, step_answer_table, summarise
from cott.data import Example, load_jsonl
from cott.tasks import hierarchy
from helpers import TOY, toy_pipeline
from train.build import build_model

TEXTS = ["i saw a cat today", "there is a bus near the house", "my friend likes this horse", "a big red truck"]


@pytest.fixture(scope="module")
def pipe(tiny_bert, toy_data, tmp_path_factory):
    hierarchy_ = hierarchy(load_jsonl(toy_data, "train"))
    return toy_pipeline(tiny_bert, toy_data, tmp_path_factory.mktemp("ckpt"), hierarchy=hierarchy_)


def test_step_answer_table_for_hierarchies_and_relations():
    ex = [Example({}, ("animal",), "cat"), Example({}, ("animal",), "dog"), Example({}, ("vehicle",), "bus")]
    assert step_answer_table(ex, "classification") == {"animal": ["cat", "dog"], "vehicle": ["bus"]}
    rel = [Example({}, ("person", "organization"), "Work_For"), Example({}, ("person", "location"), "Live_In")]
    table = step_answer_table(rel, "relation")
    assert table == {"person | location": ["Live_In", "no_relation"], "person | organization": ["Work_For", "no_relation"]}


def test_pipeline_step_answers_from_the_hierarchy(pipe):
    assert pipe.step_answers == {"animal": ["cat", "dog", "horse"], "vehicle": ["bus", "car", "truck"]}


def test_every_step_policy_matches_the_sweep(pipe):
    records = pipe.counterfactuals(TEXTS, "all")
    sweeps = pipe.sweep(TEXTS)
    for text, rec, sw in zip(TEXTS, records, sweeps):
        base = pipe(text)
        assert rec.text == text and rec.step == base.step and rec.answer == base.answer
        assert [i.step for i in rec.injections] == pipe.steps
        for inj, (step, answer, prob) in zip(rec.injections, sw.answers()):
            assert (inj.step, inj.answer) == (step, answer) and inj.answer_prob == pytest.approx(prob, abs=1e-5)
            assert inj.changed == (answer != base.answer)
            assert inj.follows == (answer in pipe.step_answers[step])


def test_fixed_step_equals_injecting_it(pipe):
    for step in pipe.steps:
        for text, rec in zip(TEXTS, pipe.counterfactuals(TEXTS, "fixed", steps=step)):
            injected = pipe(text, step=step)
            assert [i.step for i in rec.injections] == [step]
            assert rec.injections[0].answer == injected.answer


def test_given_steps_per_input_and_free_text(pipe):
    records = pipe.counterfactuals(TEXTS[:2], "given", steps=["vehicle", ["animal", "a big red house"]])
    assert [[i.step for i in r.injections] for r in records] == [["vehicle"], ["animal", "a big red house"]]
    free = records[1].injections[1]
    assert free.known is False and free.follows is None
    with pytest.raises(ValueError):
        pipe.counterfactuals(TEXTS[:2], "given", steps=["vehicle"])


def test_runner_up_and_random_wrong_policies(pipe):
    gold = ["animal", "vehicle", "animal", "vehicle"]
    for rec, text in zip(pipe.counterfactuals(TEXTS, "runner_up"), TEXTS):
        p = pipe(text).p_steps
        second = sorted(range(len(p)), key=lambda j: -p[j])[1]
        assert [i.step for i in rec.injections] == [pipe.steps[second]]
    wrong = pipe.counterfactuals(TEXTS, "random_wrong", gold_steps=gold, seed=3)
    assert wrong == pipe.counterfactuals(TEXTS, "random_wrong", gold_steps=gold, seed=3)  # seeded
    for rec, g in zip(wrong, gold):
        assert all(i.step not in (rec.step, g) for i in rec.injections)


def test_gold_policy_reads_accuracy_under_the_gold_step(pipe):
    gold, labels = ["animal", "vehicle", "animal", "vehicle"], ["cat", "bus", "horse", "truck"]
    records = pipe.counterfactuals(TEXTS, "gold", gold_steps=gold, labels=labels)
    for rec, text, g, y in zip(records, TEXTS, gold, labels):
        assert rec.injections[0].step == g and rec.gold_label == y
        assert rec.injections[0].correct == (pipe(text, step=g).answer == y)
    s = summarise(records)
    assert s["accuracy_under_injected"] == sum(r.injections[0].correct for r in records) / 4
    assert s["accuracy_model"] == sum(r.correct for r in records) / 4


def test_constrained_answers_follow_the_step(pipe):
    for rec in pipe.counterfactuals(TEXTS, "all", constrained=True):
        assert all(i.follows for i in rec.injections)
    for text in TEXTS:
        pred = pipe(text, constrained=True)
        assert pred.answer in pipe.step_answers[pred.step]
        for step in pipe.steps:
            assert pipe(text, step=step, constrained=True).answer in pipe.step_answers[step]


def test_constraining_without_a_step_answer_table_is_refused(pipe):
    bare = CoTTPipeline(pipe.model, replace(pipe.config, hierarchy=None, step_answers={}))
    for call in (lambda: bare(TEXTS[0], constrained=True), lambda: bare.counterfactuals(TEXTS, "all", constrained=True)):
        with pytest.raises(ValueError, match="step-answer table"):
            call()


def test_constrain_renormalises_over_the_allowed_answers():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert torch.allclose(constrain(p, [1, 2]), torch.tensor([[0.0, 0.6, 0.4], [0.0, 1 / 9, 8 / 9]]))


def test_summarise_counts():
    def inj(step, changed, follows, correct=None):
        return Injection(step, True, "a", 0.5, changed, follows, correct)

    records = [
        CounterfactualRecord(0, "x", "s1", 0.9, "a", "a", [inj("s2", True, True, True), inj("s3", False, None)], correct=True),
        CounterfactualRecord(1, "y", "s1", 0.9, "a", "a", [inj("s2", False, False, False)], correct=False),
    ]
    s = summarise(records)
    assert (s["inputs"], s["injections"]) == (2, 3)
    assert s["flip_rate"] == pytest.approx(1 / 3)
    assert (s["following_rate"], s["following_over"]) == (0.5, 2)
    assert (s["accuracy_under_injected"], s["accuracy_over"], s["accuracy_model"]) == (0.5, 2, 0.5)
    assert s["per_step"]["s2"] == {"injections": 2, "flip_rate": 0.5, "following_rate": 0.5}
    assert s["per_step"]["s3"]["following_rate"] is None


def test_unknown_policy_and_missing_steps_are_refused(pipe):
    with pytest.raises(ValueError, match="policy"):
        pipe.counterfactuals(TEXTS, "sometimes")
    with pytest.raises(ValueError, match="gold"):
        pipe.counterfactuals(TEXTS, "gold")


def test_model_sampled_counterfactuals_are_never_the_gold_step(pipe):
    batcher = TrainingBatcher(pipe.model, 48, sampling="model")
    examples = [Example({"text": t}, (s,), y) for t, s, y in
                zip(TEXTS, ["animal", "vehicle", "animal", "vehicle"], ["cat", "bus", "horse", "truck"])]
    drawn = batcher._counterfactuals(examples, [pipe.model.template.encode(pipe.model.tokenizer, e.fields, None, 48)
                                                for e in examples], random.Random(0))
    assert all(d != e.step for d, e in zip(drawn, examples))
    with pytest.raises(ValueError, match="sampling"):
        TrainingBatcher(pipe.model, 48, sampling="hardest")


@pytest.mark.parametrize("sampling", ["uniform", "model"])
def test_the_sampling_flag_reaches_the_batcher(pipe, sampling):
    from train.cli import parser
    from train.loop import objective

    args = parser().parse_args(["--task", "jsonl", "--data", "x", "--counterfactual-sampling", sampling])
    _, batcher = objective(pipe.model, args, 48)
    assert batcher.sampling == sampling


def _run_args(pipe):
    return {"step_answers": pipe.step_answers, "answer_mode": pipe.answer_mode, "max_length": 48}


def test_run_reads_the_texts_from_the_fields_unconstrained_by_default(pipe):
    plain = run(pipe.model, [pipe.fields(t) for t in TEXTS], "all", **_run_args(pipe))
    assert plain == pipe.counterfactuals(TEXTS, "all")
    assert [r.text for r in plain] == TEXTS
    assert plain != pipe.counterfactuals(TEXTS, "all", constrained=True)
    assert not all(i.follows for r in plain for i in r.injections)  # unconstrained: some answers leave the step


def test_each_input_is_reasoned_about_once_in_batches_of_batch_size(pipe, monkeypatch):
    """One Step I pass per batch of ``batch_size`` inputs, each input in exactly one batch; the records are those of
    one large batch."""
    import cott.counterfactual as cf

    texts = TEXTS + ["the small car"]
    whole = run(pipe.model, [pipe.fields(t) for t in texts], "all", **_run_args(pipe))
    batches, reason = [], cf.reason
    monkeypatch.setattr(cf, "reason", lambda model, fields, *a, **k: batches.append([f["text"] for f in fields])
                        or reason(model, fields, *a, **k))
    batched = run(pipe.model, [pipe.fields(t) for t in texts], "all", batch_size=2, **_run_args(pipe))
    assert [len(b) for b in batches] == [2, 2, 1] and sorted(t for b in batches for t in b) == sorted(texts)
    assert [(r.text, r.answer, [(i.step, i.answer) for i in r.injections]) for r in batched] == [
        (r.text, r.answer, [(i.step, i.answer) for i in r.injections]) for r in whole]


def test_random_wrong_steps_are_drawn_with_seed_zero_by_default(lively_bert):
    """Three steps: besides Î two are wrong, so the seed picks one."""
    torch.manual_seed(0)
    things = [t for ts in TOY.values() for t in ts]
    model = build_model(get_task("jsonl"), "cott", str(lively_bert), ["animal", "house", "vehicle"], things)
    fields = [{"text": frame.format(t)} for frame in ("i saw a {} today", "a big red {}") for t in things]
    args = {"answer_mode": "rectified", "max_length": 48}
    picked = {seed: [r.injections[0].step for r in run(model, fields, "random_wrong", seed=seed, **args)]
              for seed in range(3)}
    assert [r.injections[0].step for r in run(model, fields, "random_wrong", **args)] == picked[0]
    assert len({tuple(p) for p in picked.values()}) > 1


def test_refusals_say_what_is_missing(pipe, tiny_bert):
    with pytest.raises(ValueError, match=r"^unknown policy 'sometimes'; choose one of fixed, given, gold, runner_up, "
                                         r"random_wrong, all$"):
        pipe.counterfactuals(TEXTS, "sometimes")
    with pytest.raises(ValueError, match=r"^the 'gold' policy needs the inputs' gold steps$"):
        pipe.counterfactuals(TEXTS, "gold")
    with pytest.raises(ValueError, match=r"^the 'gold' policy needs the inputs' gold steps$"):
        pipe.counterfactuals(TEXTS, "gold", gold_steps=[None] * len(TEXTS))
    fields = [pipe.fields(t) for t in TEXTS[:2]]
    for policy in ("fixed", "given"):
        for steps in (None, [[("animal",)]]):
            with pytest.raises(ValueError, match=f"^the '{policy}' policy needs steps for every input$"):
                run(pipe.model, fields, policy, steps=steps, **_run_args(pipe))
    torch.manual_seed(0)
    direct = build_model(get_task("jsonl"), "prompt", str(tiny_bert), ["animal", "vehicle"], ["cat", "bus"])
    with pytest.raises(ValueError, match="^this model has no intermediate step to inject$"):
        run(direct, fields, "all", answer_mode="direct", max_length=48)
