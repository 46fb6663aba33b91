"""The inference API: two passes, step injection (known or free text), sweeps, batching, relation inputs."""
from dataclasses import replace

import pytest
import torch

from cott import CoTTPipeline, save_checkpoint
from cott.data import relation_example
from cott.relation_input import mark_mentions, parse_marked
from helpers import toy_meta, toy_model, toy_pipeline


@pytest.fixture(scope="module")
def pipe(tiny_bert, toy_data, tmp_path_factory):
    return toy_pipeline(tiny_bert, toy_data, tmp_path_factory.mktemp("ckpt"))


def test_prediction_is_consistent(pipe):
    pred = pipe("i saw a cat today")
    assert pred.steps == ["animal", "vehicle"] and pred.step in pred.steps
    assert pred.step_prob == pytest.approx(max(pred.p_steps))
    w = pred.step_prob
    expected = [w * a + (1 - w) * b for a, b in zip(pred.p_answer_step, pred.p_answer)]
    assert pred.p_rectified == pytest.approx(expected, abs=1e-6)
    assert pred.answer == pred.labels[max(range(len(expected)), key=expected.__getitem__)]


def test_a_prediction_carries_the_distribution_its_answer_came_from(pipe):
    own, injected = pipe("i saw a cat today"), pipe("i saw a cat today", step="vehicle")
    assert own.p_final == own.p_rectified and injected.p_final == injected.p_answer_step  # an injected step: Step II
    for pred in (own, injected):
        assert pred.answer == pred.labels[max(range(len(pred.p_final)), key=pred.p_final.__getitem__)]
    table = {"animal": ["cat", "dog", "horse"], "vehicle": ["bus", "car", "truck"]}
    kept = CoTTPipeline(pipe.model, replace(pipe.config, step_answers=table))("i saw a cat today", step="vehicle",
                                                                             constrained=True).p_final
    allowed = [pipe.labels.index(a) for a in ("bus", "car", "truck")]
    assert sum(kept[i] for i in allowed) == pytest.approx(1.0) and max(kept) == max(kept[i] for i in allowed)


def test_one_normalisation_of_a_step_for_the_library_and_the_experiment_tab(pipe):
    from cott.steps import normalise
    from cott_demo.experiment import resolve_step

    assert normalise("  Computer   Science |  PERSON ") == "computer science | person"
    for written in ("ANIMAL", "  animal ", "Animal"):
        pred = pipe("i saw a cat today", step=written)
        assert pred.step == "animal" and pred.step_prob is not None  # a known step, whatever the case and spaces
        assert resolve_step(pipe, written) == "animal"  # the Experiment tab reads it the same way


def test_injecting_a_known_step_by_label_or_words(pipe):
    base = pipe("i saw a cat today")
    other = "vehicle" if base.step == "animal" else "animal"
    injected = pipe("i saw a cat today", step=other)
    assert injected.injected and injected.step == other and injected.step_words == other
    assert injected.step_prob == pytest.approx(injected.p_steps[pipe.steps.index(other)])
    sweep = pipe.sweep("i saw a cat today")
    assert injected.p_answer_step == pytest.approx(sweep.probs[pipe.steps.index(other)], abs=1e-5)
    assert injected.answer == sweep.answers()[pipe.steps.index(other)][1]


def test_injecting_free_text(pipe):
    pred = pipe("i saw a cat today", step="a big red house")
    assert pred.injected and pred.step_prob is None and pred.step_words == "a big red house"
    assert pred.p_rectified == pred.p_answer_step


def test_batched_equals_single(pipe):
    texts = ["i saw a cat today", "a big red bus", "there is a truck near the house"]
    batched = pipe(texts)
    for t, b in zip(texts, batched):
        assert pipe(t).p_rectified == pytest.approx(b.p_rectified, abs=1e-5)
    sweeps = pipe.sweep(texts)
    assert len(sweeps) == 3 and len(sweeps[0].probs) == 2 and len(sweeps[0].probs[0]) == len(pipe.labels)


def test_bad_inputs(pipe):
    with pytest.raises(ValueError, match="empty"):
        pipe("   ")
    with pytest.raises(ValueError, match="limit"):
        pipe("a" * 200_000)
    with pytest.raises(ValueError, match="1 part"):
        pipe("a cat", step="a | b")
    with pytest.raises(TypeError):
        pipe(42)


def test_fields_checks_an_input_as_a_call_would(pipe):
    """``pipe.fields``: the public check an app runs on a file's rows before a long job (the Experiment tab)."""
    assert pipe.fields("a cat") == {"text": "a cat"} and pipe.fields({"text": "a cat", "x": 1}) == {"text": "a cat"}
    for bad, error in (("   ", ValueError), ("a" * 200_000, ValueError), (42, TypeError), ({"subj": "a"}, ValueError)):
        with pytest.raises(error):
            pipe.fields(bad)
        with pytest.raises(error):
            pipe(bad)


def test_top_k_marginal(pipe):
    assert pipe("a big red bus").p_marginal is None  # top_k=1 by default: Î alone, no marginal
    pred = pipe("a big red bus", top_k=2)
    exact = [sum(p * q for p, q in zip(pred.p_steps, col)) for col in zip(*pipe.sweep("a big red bus").probs)]
    assert pred.p_marginal == pytest.approx(exact, abs=1e-5)  # two steps: top-2 is every step


def test_marked_relation_inputs():
    assert parse_marked("[[Ada Lovelace]] works for {{Acme}} .") == {
        "text": "Ada Lovelace works for Acme .", "subj": "Ada Lovelace", "obj": "Acme",
        "marked": "@ Ada Lovelace @ works for # Acme # ."}
    for bad, msg in [("Ada works for Acme", "no subject"), ("[[Ada]] works for Acme", "no object"),
                     ("[[Ada]] and [[Bob]] work for {{Acme}}", "exactly once"),
                     ("[[Ada {{works]] for}}", "overlap or are nested"), ("[[ ]] works for {{Acme}}", "empty"),
                     ("]]Ada[[ works for {{Acme}}", "closed before"),
                     ("[[Ada works for {{Acme}}", "the subject must be marked exactly once"),  # unclosed
                     ("[[Ada [[Bob]] work for {{Acme}}", "the subject must be marked exactly once"),
                     ("[[Ada]] works for {{Acme}} }}", "the object must be marked exactly once")]:
        with pytest.raises(ValueError, match=msg):
            parse_marked(bad)
    # marks may touch (text without spaces, e.g. Chinese); extra brackets stay in the text
    assert parse_marked("[[马云]]{{阿里巴巴}}创始人")["marked"] == "@ 马云 @ # 阿里巴巴 # 创始人"
    assert parse_marked("{{阿里巴巴}}[[马云]]")["marked"] == "# 阿里巴巴 # @ 马云 @"
    assert parse_marked("[[[Ada]]] works for {{Acme}}") == {
        "text": "[Ada] works for Acme", "subj": "[Ada", "obj": "Acme", "marked": "@ [Ada @ ] works for # Acme #"}


def test_a_badly_marked_relation_input_is_refused_in_words_that_say_how_to_mark_it():
    """Each refusal names the problem and the mark it concerns, then shows how to mark a relation input."""
    how = "mark the subject as [[subject]] and the object as {{object}}, e.g. '[[Ada]] works for {{Acme}}.'"
    for bad, problem in [("Ada works for {{Acme}}", "no subject marked"), ("[[Ada]] works for Acme", "no object marked"),
                         ("[[ ]] works for {{Acme}}", "the subject mark is empty"),
                         ("[[Ada]] works for {{  }}", "the object mark is empty"),
                         ("[[Ada]] works for }}Acme{{", "the object mark is closed before it is opened"),
                         ("[[Ada]] and [[Bob]] work for {{Acme}}", "the subject must be marked exactly once ([[...]])"),
                         ("[[Ada]] works for {{Acme}} and {{Bob}}", "the object must be marked exactly once ({{...}})"),
                         ("[[Ada {{works]] for}}", "the subject and object marks overlap or are nested")]:
        with pytest.raises(ValueError) as err:
            parse_marked(bad)
        assert str(err.value) == f"{problem}: {how}"


def test_every_relation_input_marks_the_same_mentions():
    """Training (TACRED spans), the app ([[subject]] {{object}}) and plain dicts give one marked text."""
    tokens = "Bob met Ada ; Ada works for Acme .".split()
    spans = {"subj_start": 2, "subj_end": 2, "obj_start": 7, "obj_end": 7}
    want = "Bob met @ Ada @ ; Ada works for # Acme # ."
    assert relation_example(tokens, spans).fields["marked"] == want
    assert parse_marked("Bob met [[Ada]] ; Ada works for {{Acme}} .")["marked"] == want
    assert mark_mentions(" ".join(tokens), "Ada", "Acme") == want  # a dict input: the first occurrences
    assert mark_mentions("Ada met Ada .", "Ada", "Ada") == "@ Ada @ met # Ada # ."  # the object avoids the subject
    assert mark_mentions("Ada works .", "Ada", "Zed") == "@ Ada @ works ."  # a mention not in the text stays unmarked


def test_a_mention_is_marked_at_its_first_occurrence_clear_of_the_subject():
    """The object is the first occurrence that does not overlap the subject's span, even one touching it (text
    without spaces, e.g. Chinese); an empty mention marks nothing."""
    assert mark_mentions("马云阿里巴巴创始人", "马云", "阿里巴巴") == "@ 马云 @ # 阿里巴巴 # 创始人"  # starts where it ends
    assert mark_mentions("阿里巴巴马云", "马云", "阿里巴巴") == "# 阿里巴巴 # @ 马云 @"  # ends where it starts
    assert mark_mentions("Ada met Ada and Ada .", "Ada", "Ada") == "@ Ada @ met # Ada # and Ada ."  # the second, not the last
    assert mark_mentions("xaaa", "xa", "aa") == "@ xa @ # aa #"  # "aa" at 1 overlaps, the one at 2 does not
    assert mark_mentions("Ada works .", "", "Ada") == "# Ada # works ."
    assert mark_mentions("Ada works .", "Ada", "") == "@ Ada @ works ."


@pytest.fixture(scope="module")
def lively(lively_bert, toy_data, tmp_path_factory):
    """The toy pipeline over the lively BERT: its answers differ clearly from step to step."""
    model, _ = toy_model(lively_bert, toy_data)
    folder = tmp_path_factory.mktemp("lively") / "toy"
    return CoTTPipeline.from_pretrained(str(save_checkpoint(model, folder, toy_meta(lively_bert))))


def test_each_input_keeps_its_own_step_across_chunks(lively):
    """One step per input, over several chunks of ``batch_size``: each prediction is the one its input gets alone
    under its own step (known, free text or None for Î)."""
    pipe = lively
    texts = ["i saw a cat today", "a big red bus", "there is a truck near the house", "the small dog", "a big horse"]
    steps = ["vehicle", None, "animal", "some kind of thing", "vehicle"]
    batched = pipe(texts, step=steps, batch_size=2)
    assert len(batched) == len(texts)
    for text, step, got in zip(texts, steps, batched):
        alone = pipe(text, step=step)
        assert (got.text, got.step, got.injected) == (text, alone.step, step is not None)
        assert got.step == (step if step is not None else alone.step)
        assert got.p_answer_step == pytest.approx(alone.p_answer_step, abs=1e-5)
        if step is not None:  # the step matters: Step II under it is not Step II under Î
            assert got.p_answer_step != pytest.approx(pipe(text).p_answer_step, abs=1e-3) or alone.step == pipe(text).step
    one = pipe.sweep(texts[0])
    assert one.text == texts[0] and torch.allclose(torch.tensor(one.probs), torch.tensor(pipe.sweep(texts)[0].probs),
                                                   atol=1e-5)


def test_a_two_part_step_given_as_a_list_is_one_inputs_step(tmp_path):
    """For one input, a list is the parts of its step (one per [C] slot), the same step as "a | b"; for a list of
    inputs, a list gives one step per input."""
    from app_tiny import RELATION, build_tiny_checkpoint

    rel = CoTTPipeline.from_pretrained(str(build_tiny_checkpoint(tmp_path, RELATION, "relation")))
    text = "[[Ada]] works for {{Acme}} in Paris."
    as_list, as_text = rel(text, step=["Peop", "Org"]), rel(text, step="Peop | Org")
    assert as_list.step == as_text.step == "Peop | Org" and as_list.p_answer_step == as_text.p_answer_step
    two = rel([text, text], step=["Peop | Org", "Org | Loc"])
    assert [p.step for p in two] == ["Peop | Org", "Org | Loc"]


def test_refusals_say_what_is_wrong_in_words(pipe):
    for bad, error, words in (("   ", ValueError, "the input text is empty"),
                              ("a" * 200_000, ValueError, "the input text has 200,000 characters; the limit is 100,000"),
                              (42, TypeError, "an input is a string or a dict, not int")):
        with pytest.raises(error, match=f"^{words}$"):
            pipe(bad)
    assert pipe.fields("a" * 100_000)["text"] == "a" * 100_000  # the limit itself is allowed
    with pytest.raises(ValueError, match="^give one step per input$"):
        pipe(["a cat", "a bus"], step=["animal"])
    bare = CoTTPipeline(pipe.model, replace(pipe.config, step_answers={}))
    with pytest.raises(ValueError, match="^this checkpoint records no step-answer table to constrain the answer with$"):
        bare("a cat", constrained=True)
    with pytest.raises(ValueError, match=r"^the 'given' policy needs one step \(or a list of steps\) per input$"):
        pipe.counterfactuals(["a cat", "a bus"], "given", steps=["animal"])
    with pytest.raises(ValueError, match=r"^the 'given' policy needs one step \(or a list of steps\) per input$"):
        pipe.counterfactuals(["a cat"], "given")


def test_a_relation_pipeline_marks_a_dict_inputs_mentions_and_needs_both(pipe):
    relation = CoTTPipeline(pipe.model, replace(pipe.config, kind="relation"))
    assert relation.fields({"text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme", "x": 1}) == {
        "text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme", "marked": "@ Ada @ works for # Acme # ."}
    assert relation.fields("[[Ada]] works for {{Acme}} .") == parse_marked("[[Ada]] works for {{Acme}} .")
    words = r"^a relation input needs a subject and an object: mark them as \[\[subject\]\] and \{\{object\}\}$"
    for half in ({"text": "Ada works for Acme .", "subj": "Ada"}, {"text": "Ada works for Acme .", "obj": "Acme"}):
        with pytest.raises(ValueError, match=words):
            relation.fields(half)
    assert pipe.fields({"text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme"}) == {
        "text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme"}  # classification: no marks


def test_top_lists_the_five_most_probable_answers_of_the_final_distribution(pipe):
    pred = pipe("i saw a cat today")
    order = sorted(range(len(pred.labels)), key=lambda i: -pred.p_rectified[i])
    assert pred.top() == [(pred.labels[i], pred.p_rectified[i]) for i in order[:5]]
    assert pred.top(2, "p_answer") == [(pred.labels[i], pred.p_answer[i])
                                       for i in sorted(range(len(pred.labels)), key=lambda i: -pred.p_answer[i])[:2]]


def test_the_card_shows_the_checkpoints_record_and_verbalizers(pipe):
    card = pipe.card()
    c = pipe.config
    assert {k: card[k] for k in ("task", "kind", "method", "backbone", "template", "max_length", "metrics",
                                 "training", "description", "calibration")} == {
        "task": c.task, "kind": c.kind, "method": c.method, "backbone": c.backbone, "template": c.template,
        "max_length": c.max_length, "metrics": c.metrics, "training": c.training, "description": c.description,
        "calibration": c.calibration}
    assert card["answer_words"] == pipe.model.answer.words and card["step_words"] == pipe.model.step.words
    assert "init_from" not in card and "ingredients" not in card
    history = CoTTPipeline(pipe.model, replace(pipe.config, raw={"init_from": "a/b", "ingredients": ["x", "y"]})).card()
    assert (history["init_from"], history["ingredients"]) == ("a/b", ["x", "y"])


def test_the_scope_score_is_the_checkpoints_signal_and_below_its_threshold_flags_the_input(pipe):
    """``out_of_scope`` in the checkpoint: each input read with Î gets the named signal's score, flagged out of scope
    when it is below the threshold (not at it); an injected step reads no scope; no fit, no score."""
    text = "i saw a cat today"
    plain = pipe(text)
    assert (plain.scope_score, plain.out_of_scope) == (None, None)
    top = sorted(plain.p_rectified, reverse=True)
    for signal, score in (("p_step", plain.step_prob), ("max_rectified", top[0]), ("margin", top[0] - top[1]),
                          ("max_direct", max(plain.p_answer))):
        def scoped(threshold):
            return CoTTPipeline(pipe.model, replace(pipe.config, out_of_scope={"signal": signal, "threshold": threshold}))

        got = scoped(0.0)(text)
        assert got.scope_score == pytest.approx(score, abs=1e-6) and got.out_of_scope is False
        assert scoped(got.scope_score)(text).out_of_scope is False  # at the threshold: in scope
        assert scoped(got.scope_score + 1e-3)(text).out_of_scope is True
        injected = scoped(1.0)(text, step="vehicle")
        assert (injected.scope_score, injected.out_of_scope) == (None, None)
        both = scoped(0.0)([text, "a big red bus"])  # each input of a batch scored on its own
        assert [p.scope_score for p in both] == pytest.approx([got.scope_score, scoped(0.0)("a big red bus").scope_score], abs=1e-5)


def test_a_checkpoint_loads_on_the_gpu_when_there_is_one_unless_a_device_is_named(pipe, monkeypatch, tmp_path):
    import cott.pipeline

    seen = []
    monkeypatch.setattr(cott.pipeline, "load_checkpoint", lambda path, device: seen.append((path, device)) or (pipe.model, pipe.config))
    for available, named, device in ((True, None, "cuda"), (False, None, "cpu"), (True, "cpu", "cpu"), (False, "meta", "meta")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        loaded = CoTTPipeline.from_pretrained(str(tmp_path), device=named, max_length=17)
        assert seen[-1] == (tmp_path, device) and loaded.max_length == 17 and loaded.model is pipe.model
    assert CoTTPipeline.from_pretrained(str(tmp_path)).max_length == pipe.config.max_length


def test_a_model_without_steps_answers_directly_and_refuses_a_step(lively, lively_bert, toy_data):
    from cott.inference import reason

    model, _ = toy_model(lively_bert, toy_data, method="prompt")
    direct = CoTTPipeline(model, lively.config)
    assert not direct.has_steps
    texts = ["i saw a cat today", "a big red bus"]
    probs = reason(model, [{"text": t} for t in texts], None, direct.max_length)["p_answer"]
    for text, pred, p in zip(texts, direct(texts), probs):
        assert (pred.text, pred.labels, pred.steps, pred.step, pred.injected) == (text, direct.labels, [], None, False)
        assert pred.p_answer == pred.p_rectified == pred.p_final == pytest.approx(p.tolist())
        assert pred.answer == direct.labels[int(p.argmax())] and pred.answer_mode == "direct"
        assert (pred.scope_score, pred.out_of_scope, pred.truncated) == (None, None, False)
    scoped = CoTTPipeline(model, replace(lively.config, out_of_scope={"signal": "max_direct", "threshold": 2.0}))
    pred = scoped(texts[0])
    assert pred.scope_score == pytest.approx(float(probs[0].max()), abs=1e-6) and pred.out_of_scope is True
    with pytest.raises(ValueError, match="^this model has no intermediate step to inject$"):
        direct(texts[0], step="animal")


def test_a_relation_pipeline_reads_a_tokenized_span_input_and_refuses_mentions_without_text(pipe):
    relation = CoTTPipeline(pipe.model, replace(pipe.config, kind="relation"))
    tokens = "Bob met Ada ; Ada works for Acme .".split()
    spans = {"subj_start": 2, "subj_end": 2, "obj_start": 7, "obj_end": 7}
    assert relation.fields({"token": tokens, **spans}) == relation_example(tokens, spans).fields
    with pytest.raises(ValueError, match="^the input text is empty$"):
        relation.fields({"subj": "Ada", "obj": "Acme"})


def test_a_prediction_as_a_dict_holds_every_field_and_follows_the_checkpoints_answer_mode(pipe):
    """``to_dict``: every field by name (what the app and the CLIs write out); Î's prediction answers from the
    checkpoint's answer mode, an injected step's from Step II, whatever the checkpoint says."""
    from dataclasses import fields

    pred = pipe("i saw a cat today")
    as_dict = pred.to_dict()
    assert as_dict == {f.name: getattr(pred, f.name) for f in fields(pred)} and as_dict["text"] == "i saw a cat today"
    assert pipe.num_step_slots == 1
    for mode, source in (("direct", "p_answer"), ("step2", "p_answer_step"), ("rectified", "p_rectified")):
        moded = CoTTPipeline(pipe.model, replace(pipe.config, answer_mode=mode))
        assert moded.answer_mode == mode
        own, injected = moded("i saw a cat today"), moded("i saw a cat today", step="vehicle")
        assert (own.answer_mode, own.p_final) == (mode, getattr(own, source))
        assert own.answer == own.labels[max(range(len(own.p_final)), key=own.p_final.__getitem__)]
        assert (injected.answer_mode, injected.p_final, injected.step) == ("step2", injected.p_answer_step, "vehicle")
        assert not own.injected and injected.injected and own.step == pipe.steps[own.p_steps.index(max(own.p_steps))]


def test_each_input_of_a_batch_keeps_its_own_truncation_flag_and_text_across_chunks(pipe):
    """Only the inputs that the checkpoint's max_length cuts are flagged, chunk by chunk, with or without a step."""
    short, long = "a cat", "a cat " + "and a big red dog " * 40
    texts = [short, long, short, long, long]
    for step in (None, "vehicle"):
        for batch_size in (1, 2, 32):
            preds = pipe(texts, step=step, batch_size=batch_size)
            assert [p.truncated for p in preds] == [False, True, False, True, True]
            assert [p.text for p in preds] == texts
    first_only = pipe([short, long], step=["animal", None], batch_size=1)
    assert [(p.step, p.injected, p.step_prob is None) for p in first_only][0] == ("animal", True, False)
    assert first_only[1].step == pipe(long).step and not first_only[1].injected


def test_a_mention_next_to_or_repeated_after_the_other_is_marked_at_its_next_free_occurrence():
    """The object is found at the first occurrence clear of the subject: one that starts where the subject ends
    counts as clear, and after an overlap the search goes on forwards, not from the end."""
    assert mark_mentions("the JoJo show", "Jo", "Jo") == "the @ Jo @ # Jo # show"
    assert mark_mentions("Jo and Jo and Jo", "Jo", "Jo") == "@ Jo @ and # Jo # and Jo"
    assert mark_mentions("Ada works .", "", "Ada") == "# Ada # works ."


def test_counterfactuals_read_the_pipelines_scope_fit_answer_mode_max_length_and_seed(pipe):
    """``pipe.counterfactuals`` hands the checkpoint's out-of-scope fit and answer mode, the pipeline's own
    max_length and the seed (0 by default) to ``cott.counterfactual.run``: records agree with ``pipe(text)``."""
    texts = ["i saw a cat today", "a cat " + "and a big red dog " * 7]
    for mode in ("direct", "step2"):
        fit = {"signal": "max_rectified", "threshold": 0.5}
        scoped = CoTTPipeline(pipe.model, replace(pipe.config, out_of_scope=fit, answer_mode=mode))
        for text, rec in zip(texts, scoped.counterfactuals(texts, "runner_up")):
            alone = scoped(text)
            assert (rec.text, rec.step, rec.answer) == (text, alone.step, alone.answer)
            assert rec.scope_score == pytest.approx(alone.scope_score, abs=1e-5)
            assert rec.out_of_scope == alone.out_of_scope and rec.truncated == alone.truncated
    assert [r.truncated for r in pipe.counterfactuals(texts, "runner_up")] == [False, True]
    roomy = CoTTPipeline(pipe.model, pipe.config, max_length=120)
    assert [r.truncated for r in roomy.counterfactuals(texts, "runner_up")] == [False, False]
    gold = ["animal", "vehicle"]
    assert pipe.counterfactuals(texts, "random_wrong", gold_steps=gold) == pipe.counterfactuals(
        texts, "random_wrong", gold_steps=gold, seed=0)
    assert [r.gold_step for r in pipe.counterfactuals(texts, "runner_up", gold_steps=["ANIMAL", ""])] == ["animal", None]


def test_random_wrong_counterfactuals_draw_from_seed_0_unless_told(tmp_path):
    """The default seed is 0: a rerun without a seed injects the same random wrong steps; another seed others."""
    from app_tiny import RELATION, build_tiny_checkpoint

    rel = CoTTPipeline.from_pretrained(str(build_tiny_checkpoint(tmp_path, RELATION, "relation")))
    texts = ["[[Ada]] works for {{Acme}} in Paris."] * 6

    def drawn(**seed):
        return [r.injections[0].step for r in rel.counterfactuals(texts, "random_wrong", **seed)]

    assert drawn() == drawn(seed=0) != drawn(seed=1)


def test_sweeps_counterfactuals_and_explanations_batch_64_64_and_32_inputs_by_default(pipe, monkeypatch):
    """The documented default batch sizes (memory a user plans for) reach the batched passes."""
    import cott.pipeline as pipeline

    seen = {}
    real_sweep, real_run = pipeline.sweep, pipeline.counterfactual.run
    monkeypatch.setattr(pipeline, "sweep", lambda *a: seen.setdefault("sweep", a[-1]) and real_sweep(*a))
    monkeypatch.setattr(pipeline.counterfactual, "run",
                        lambda *a, **kw: seen.setdefault("run", kw["batch_size"]) and real_run(*a, **kw))
    monkeypatch.setattr(pipeline.attribution, "explain", lambda *a: seen.setdefault("explain", (a[-2], a[-1])))
    pipe.sweep("a cat")
    pipe.counterfactuals(["a cat"], "runner_up")
    pipe.explain("a cat")
    assert seen == {"sweep": 64, "run": 64, "explain": (False, 32)}  # explain: direct off, 32 a batch
