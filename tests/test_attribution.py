"""Word attributions and their faithfulness: on a tiny BERT trained until one planted word decides the step and the
answer, the attributions find that word; integrated gradients sum to the probability's change; occlusion is the
fall when the word is removed; sub-tokens group into words (WordPiece and byte-level BPE); relation markers are
never attributed nor removed; the demo's HTML is escaped."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from helpers import TOY, build_tiny_bert, typed_config

from cott import CoTTModel, CoTTPipeline, Template, Verbalizer
from cott.attribution import prompts, target_probs
from cott.words import MAX_WORDS, parse
from cott.faithfulness import RANDOM, DeletionCurve, area_between, deletion_curves

TEMPLATE = "[T] The category is [C] . The label is [A] ."
FRAMES = ["i saw a {} today", "there is a {} near the house", "my friend likes this {}", "a big red {}"]
THINGS = [t for things in TOY.values() for t in things]


def _pipe(model, kind="classification"):
    return CoTTPipeline(model, typed_config(kind=kind, max_length=48))


def _model(backbone, template=TEMPLATE, answers=None, steps=None):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    torch.manual_seed(0)
    answers = answers or {t: [t] for t in THINGS}
    steps = steps or {s: [s] for s in TOY}
    return CoTTModel(AutoModelForMaskedLM.from_pretrained(backbone), AutoTokenizer.from_pretrained(backbone),
                     Template(template), Verbalizer(list(answers), answers), Verbalizer(list(steps), steps), proj_dim=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny BERT trained (seconds) so that the thing word alone decides the step (its kind) and the answer."""
    model = _model(build_tiny_bert(tmp_path_factory.mktemp("trigger_bert"), seed=0))
    kinds = {t: k for k, things in TOY.items() for t in things}
    rows = [(frame.format(t), t) for frame in FRAMES for t in THINGS]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        step_ids = torch.tensor([list(TOY).index(kinds[t]) for _, t in rows])
        answer_ids = torch.tensor([THINGS.index(t) for _, t in rows])
        first = model(**model.collate([model.template.encode(model.tokenizer, {"text": x}, None, 48) for x, _ in rows]))
        second = model(**model.collate([model.template.encode(model.tokenizer, {"text": x}, [kinds[t]], 48)
                                        for x, t in rows]))
        loss = (F.cross_entropy(first["step_logits"][:, 0], step_ids) + F.cross_entropy(first["answer_logits"], answer_ids)
                + F.cross_entropy(second["answer_logits"], answer_ids))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _pipe(model.eval())


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_the_planted_word_explains_the_step_and_the_answer(trained, method):
    for text, thing in [("i saw a horse today", "horse"), ("there is a bus near the house", "bus")]:
        exp = trained.explain(text, method=method)
        assert exp.answer == thing and exp.step == next(k for k, v in TOY.items() if thing in v)
        assert exp.words[max(range(len(exp.words)), key=exp.step_scores.__getitem__)] == thing
        assert exp.words[max(range(len(exp.words)), key=exp.answer_scores.__getitem__)] == thing
        assert exp.step_scores[exp.words.index(thing)] > 0 and exp.answer_scores[exp.words.index(thing)] > 0


def test_integrated_gradients_sum_to_the_change_from_the_reference(trained):
    text = "my friend likes this truck"
    exp = trained.explain(text, method="ig", direct=True)
    fields = [trained.fields(text)]
    _, _, jobs = prompts(trained, fields, [None], direct=True)
    for target, scores in (("step", exp.step_scores), ("answer", exp.answer_scores), ("direct", exp.direct_scores)):
        p = jobs[target][0]
        reference = p.enc.input_ids.copy()
        for s in p.slots:
            reference[s] = trained.model.tokenizer.pad_token_id
        ref = target_probs(trained.model, [type(p.enc)(reference, p.enc.answer_pos, p.enc.step_pos)], p.kind, [p.target])
        full = target_probs(trained.model, [p.enc], p.kind, [p.target])
        assert sum(scores) == pytest.approx(float(full - ref), abs=0.03)


def test_occlusion_is_the_fall_when_the_word_is_removed(trained):
    text = "a big red cat"
    exp = trained.explain(text, method="occlusion")
    j = trained.steps.index(exp.step)
    for i, word in enumerate(exp.words):
        without = " ".join(w for k, w in enumerate(exp.words) if k != i)
        pred = trained(without)
        assert exp.step_scores[i] == pytest.approx(exp.step_prob - pred.p_steps[j], abs=1e-4)
        under = trained(without, step=exp.answer_step)
        y = trained.labels.index(exp.answer)
        assert exp.answer_scores[i] == pytest.approx(exp.answer_prob - under.p_answer_step[y], abs=1e-4)


def test_deletion_curves_beat_random_on_the_planted_word_and_are_seeded(trained):
    texts = [frame.format(t) for frame in FRAMES[:2] for t in THINGS]
    curves = deletion_curves(trained, texts, ["ig", "occlusion"], k_max=2, seed=0)
    by = {(c.target, c.method): c for c in curves}
    for target in ("step", "answer"):
        for method in ("ig", "occlusion"):
            assert by[target, method].drop(1) > by[target, RANDOM].drop(1)
            assert area_between(by[target, method], by[target, RANDOM]) > 0
    again = deletion_curves(trained, texts, [], k_max=2, seed=0)
    assert [c.probs for c in again] == [by[c.target, RANDOM].probs for c in again]


def _deletion_reference(pipe, texts, k_max, order_of):
    """Mean p(Î|x) and p(ŷ|x,Î) after deleting the first k words of ``order_of(i, explanation, target)``, k =
    0..k_max, by re-reading each shortened text (an independent path: the pipeline, not deleted tokens)."""
    out = {"step": [0.0] * (k_max + 1), "answer": [0.0] * (k_max + 1)}
    for i, text in enumerate(texts):
        exp = pipe.explain(text, method="occlusion")
        j, y = pipe.steps.index(exp.step), pipe.labels.index(exp.answer)
        for target in out:
            order = order_of(i, exp, target)
            for k in range(k_max + 1):
                without = " ".join(w for n, w in enumerate(exp.words) if n not in order[:k])
                p = pipe(without).p_steps[j] if target == "step" else pipe(without, step=exp.answer_step).p_answer_step[y]
                out[target][k] += p / len(texts)
    return out


def test_deletion_curves_are_the_mean_probability_after_deleting_top_or_random_words(trained):
    texts = ["i saw a horse today", "a big red bus", "my friend likes this cat"]
    seen = []
    curves = deletion_curves(trained, texts, ["occlusion"], k_max=2, seed=3, batch_size=2, progress=seen.append)
    assert seen == [2, 1]  # inputs done per batch
    by = {(c.target, c.method): c for c in curves}
    assert set(by) == {(t, m) for t in ("step", "answer") for m in ("occlusion", RANDOM)}
    assert all(c.n == 3 and len(c.probs) == 3 for c in curves)

    def top_first(i, exp, target):  # highest score first, ties: the earlier word
        scores = exp.step_scores if target == "step" else exp.answer_scores
        return sorted(range(len(exp.words)), key=lambda w: (-scores[w], w))

    def seeded(i, exp, target):  # the random order is fixed by the seed and the input's index in the whole run
        order = list(range(len(exp.words)))
        random.Random(f"3:{i}").shuffle(order)
        return order

    for method, order_of in (("occlusion", top_first), (RANDOM, seeded)):
        expected = _deletion_reference(trained, texts, 2, order_of)
        for target in ("step", "answer"):
            assert by[target, method].probs == pytest.approx(expected[target], abs=1e-4)
    one_batch = deletion_curves(trained, texts, [], k_max=2, seed=3)
    for c in one_batch:  # batches of 2 or one batch: the same random words
        assert c.probs == pytest.approx(by[c.target, RANDOM].probs, abs=1e-5)
    assert deletion_curves(trained, texts, [], k_max=2, seed=4) != one_batch  # another seed, other random words


def test_deletion_curves_default_to_five_deletions_and_seed_zero(trained):
    texts = ["there is a dog near the house"]
    default = deletion_curves(trained, texts, [])
    assert [len(c.probs) for c in default] == [6, 6]
    assert default == deletion_curves(trained, texts, [], k_max=5, seed=0)
    pred = trained(texts[0])  # one text: its own probabilities, nothing deleted at k = 0
    by = {c.target: c for c in default}
    assert by["step"].n == by["answer"].n == 1
    assert by["step"].probs[0] == pytest.approx(pred.step_prob, abs=1e-5)
    assert by["answer"].probs[0] == pytest.approx(max(pred.p_answer_step), abs=1e-5)


def test_a_model_without_a_step_has_no_deletion_curves(tiny_bert):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    answers = {t: [t] for t in THINGS}
    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert),
                      Template("[T] The label is [A] ."), Verbalizer(list(answers), answers), None)
    assert deletion_curves(_pipe(model), ["i saw a cat today"], ["occlusion"], k_max=1) == []


def test_area_between_is_the_mean_gap_over_k_from_one():
    random_curve = DeletionCurve("step", RANDOM, [0.9, 0.8], n=3)
    method = DeletionCurve("step", "ig", [0.9, 0.5], n=3)
    assert area_between(method, random_curve) == pytest.approx(0.3)  # one deletion: the gap itself, not halved
    random_curve = DeletionCurve("answer", RANDOM, [0.9, 0.8, 0.6], n=3)
    method = DeletionCurve("answer", "occlusion", [0.9, 0.5, 0.5], n=3)
    assert area_between(method, random_curve) == pytest.approx((0.3 + 0.1) / 2)  # k = 0 is not counted
    assert area_between(DeletionCurve("step", "ig", [0.9], 1), DeletionCurve("step", RANDOM, [0.9], 1)) == 0
    assert method.drop(2) == pytest.approx(0.4)


def test_explanations_are_deterministic_batched_and_bounded(trained):
    texts = ["i saw a dog today", "the small car"]
    one = [trained.explain(t) for t in texts]
    both = trained.explain(texts)
    for a, b in zip(one, both):
        assert a.words == b.words and a.step_scores == pytest.approx(b.step_scores, abs=1e-5)
    assert trained.explain(texts[0]).answer_scores == one[0].answer_scores
    with pytest.raises(ValueError, match="at most"):
        trained.explain(" ".join(["dog"] * (MAX_WORDS + 1)))
    with pytest.raises(ValueError, match="unknown attribution method"):
        trained.explain(texts[0], method="shap")


def test_an_injected_step_is_the_one_the_answer_is_explained_under(trained):
    exp = trained.explain("i saw a cat today", step="vehicle")
    assert exp.step == "animal" and exp.answer_step == "vehicle"
    assert exp.answer_prob == pytest.approx(trained("i saw a cat today", step="vehicle").p_answer_step[
        trained.labels.index(exp.answer)], abs=1e-5)
    assert exp.text == "i saw a cat today"
    free = trained.explain("i saw a cat today", step="red house")  # free words: no label to name them by
    assert free.answer_step == "red house"
    assert free.answer_prob == pytest.approx(max(trained("i saw a cat today", step="red house").p_answer_step), abs=1e-5)


def test_a_text_longer_than_the_pipelines_max_length_is_explained_as_far_as_the_prompt_reads_it(trained):
    """The prompts are cut at the pipeline's max_length (48 here, not the library's default): words past it are not
    seen, and score nothing."""
    text = " ".join(["dog", "cat", "car", "bus"] * 15)
    exp = trained.explain(text, method="occlusion")
    assert exp.seen[0] and not exp.seen[-1] and 10 < sum(exp.seen) < 48
    assert all(s == 0 for s, seen in zip(exp.answer_scores, exp.seen) if not seen)


def test_wordpiece_sub_tokens_group_into_words(tiny_bert):
    model = _model(tiny_bert)
    parsed = parse(model, {"text": "the horses likes  houses."})
    assert parsed.words == ["the", "horses", "likes", "houses."]
    pieces = model.tokenizer.convert_ids_to_tokens(parsed.text_ids)
    assert pieces == ["the", "horse", "##s", "likes", "house", "##s", "."]
    assert parsed.word_of_token == [0, 1, 1, 2, 3, 3, 3]
    exp = _pipe(model).explain("the horses likes houses.", method="occlusion")
    assert len(exp.step_scores) == 4 and all(exp.seen)


def test_a_text_of_many_sub_tokens_is_parsed_as_the_prompt_reads_it(tiny_bert):
    """Words that split into many pieces can pass 1,024 tokens within MAX_WORDS: the parse keeps the same first
    TEXT_TOKEN_LIMIT tokens that the template puts in the prompt, so the words line up with the tokens scored."""
    from cott.template import TEXT_TOKEN_LIMIT

    model = _model(tiny_bert)
    text = " ".join([".".join(["house"] * 5)] * MAX_WORDS)  # each word: 9 tokens
    parsed = parse(model, {"text": text})
    whole = model.tokenizer.encode(text, add_special_tokens=False)
    assert len(whole) > TEXT_TOKEN_LIMIT and len(parsed.words) == MAX_WORDS
    assert parsed.text_ids == model.template.text_ids(model.tokenizer, text) == whole[:TEXT_TOKEN_LIMIT]
    assert len(parsed.word_of_token) == TEXT_TOKEN_LIMIT


def test_byte_level_bpe_sub_tokens_group_into_words(tiny_roberta):
    model = _model(tiny_roberta)
    text = "a zebra near the house"  # "zebra" is not in the toy corpus: several byte-level pieces
    parsed = parse(model, {"text": text})
    assert parsed.words == text.split()
    assert parsed.word_of_token.count(1) > 1
    assert parsed.word_of_token == sorted(parsed.word_of_token)
    for method in ("ig", "grad_x_input", "occlusion"):
        assert len(_pipe(model).explain(text, method=method).answer_scores) == 5


def test_relation_markers_are_kept_and_never_attributed(tiny_bert):
    template = '[T:marked] The [C] " [T:subj] " and the [C] " [T:obj] " : [A] .'
    model = _model(tiny_bert, template, answers={"Work_For": ["works for"], "no_relation": ["unrelated to"]},
                   steps={"Peop": ["person"], "Org": ["organization"]})
    pipe = _pipe(model, "relation")
    exp = pipe.explain("[[ada]] works for {{acme}} in paris .", method="occlusion")
    assert exp.words == ["ada", "works", "for", "acme", "in", "paris", "."]
    assert exp.roles == ["subject", "", "", "object", "", "", ""]
    fields = [pipe.fields("[[ada]] works for {{acme}} in paris .")]
    _, _, jobs = prompts(pipe, fields, [None])
    markers = model.tokenizer.encode("@ #", add_special_tokens=False)
    for p in jobs.values():
        p = p[0]
        texts = p.enc.text_pos
        left = [p.enc.input_ids[i] for i in texts if i not in p.slots]
        assert len(left) == 4 and set(left) <= set(markers)  # the four markers, never a slot
    of = parse(model, fields[0]).word_of_token
    assert of.count(-1) == 4 and min(of) == -1  # each marker token is -1 (no word), as Parsed documents


def test_explaining_leaves_concurrent_predictions_alone(trained):
    import threading

    texts = ["i saw a dog today", "a big red bus"]
    expected = [p.p_answer_step for p in trained(texts)]
    worker = threading.Thread(target=lambda: [trained.explain(texts, method=m) for m in ("ig", "grad_x_input") * 3])
    worker.start()
    while worker.is_alive():  # the demo serves /predict while /explain runs on the same model
        assert [p.p_answer_step for p in trained(texts)] == [pytest.approx(e, abs=1e-6) for e in expected]
    worker.join()


def test_the_pipeline_imports_without_captum():
    """Captum is loaded when an attribution is asked for, not with the pipeline (a machine without it still serves)."""
    import subprocess
    import sys

    code = "import sys, cott.pipeline; print('captum' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_int8_model_is_explained_by_occlusion_and_refuses_gradients_in_words(tiny_bert):
    from cott.attribution import check_method, default_method
    from cott.quantization import quantize

    model = _model(tiny_bert)
    assert default_method(model) == "ig"
    with pytest.raises(ValueError, match=r"^unknown attribution method 'shap'; choose one of occlusion, ig, grad_x_input$"):
        check_method(model, "shap")
    pipe = _pipe(quantize(model, "int8"))
    assert default_method(pipe.model) == "occlusion"
    assert pipe.explain("a big red cat").method == "occlusion"
    for method in ("ig", "grad_x_input"):
        with pytest.raises(ValueError, match=rf"^{method} needs gradients, which a quantized \(int8\) model does not "
                                             r"give; use 'occlusion'$"):
            pipe.explain("a big red cat", method=method)


def test_a_relation_read_unmarked_takes_its_roles_from_the_marked_text(tiny_bert):
    """A relation template with a plain [T] still marks the subject's and object's words by role, from the marked
    text, when its words are the text's words; otherwise (or without a marked text) no word has a role."""
    template = '[T] The [C] " [T:subj] " and the [C] " [T:obj] " : [A] .'
    model = _model(tiny_bert, template, answers={"Work_For": ["works for"], "no_relation": ["unrelated to"]},
                   steps={"Peop": ["person"], "Org": ["organization"]})
    fields = {"text": "ada works for acme house", "subj": "ada", "obj": "acme house",
              "marked": "@ ada @ works for # acme house #"}
    parsed = parse(model, fields)
    assert parsed.words == ["ada", "works", "for", "acme", "house"]
    assert parsed.roles == ["subject", "", "", "object", "object"]
    assert min(parsed.word_of_token) == 0  # no marker in the text read
    assert parse(model, {**fields, "marked": "@ bob @ works for # acme house #"}).roles == [""] * 5
    assert parse(model, {k: v for k, v in fields.items() if k != "marked"}).roles == [""] * 5
    exp = _pipe(model, "relation").explain("[[ada]] works for {{acme}} in paris .", method="occlusion")
    assert exp.words == ["ada", "works", "for", "acme", "in", "paris", "."]
    assert exp.roles == ["subject", "", "", "object", "", "", ""]


def test_a_token_that_starts_with_spaces_belongs_to_the_word_after_them():
    from cott.words import token_words

    main = "ab  cd e"
    spans = [(0, 2), (4, 6), (7, 8)]
    assert token_words([(0, 1), (1, 2), (2, 5), (5, 6), (6, 8)], spans, main) == [0, 0, 1, 1, 2]
    assert token_words([(2, 4)], spans, main) == [1]  # nothing but spaces: the word after them
    assert token_words([(3, 3), (6, 6)], spans, main) == [0, 1]  # an empty token stays with the word before it


def test_parse_refuses_more_than_max_words_in_words(tiny_bert):
    model = _model(tiny_bert)
    assert len(parse(model, {"text": " ".join(["dog"] * MAX_WORDS)}).words) == MAX_WORDS
    with pytest.raises(ValueError) as err:
        parse(model, {"text": " ".join(["dog"] * (MAX_WORDS + 1))})
    assert str(err.value) == f"the text has {MAX_WORDS + 1:,} words; attributions are computed for at most {MAX_WORDS}"


def test_each_prompt_reads_its_target_at_the_step_or_at_the_answer(trained):
    fields = [trained.fields("i saw a dog today"), trained.fields("the small car")]
    _, r, jobs = prompts(trained, fields, [None, None], direct=True)
    assert set(jobs) == {"step", "answer", "direct"}
    for kind, expected in (("step", "step"), ("answer", "answer"), ("direct", "answer")):
        assert [p.kind for p in jobs[kind]] == [expected, expected]
    assert [p.target for p in jobs["step"]] == [int(s) for s in r["step_hat"]]
    assert [p.target for p in jobs["answer"]] == r["p_answer_step"].argmax(-1).tolist()
    assert [p.target for p in jobs["direct"]] == r["p_answer"].argmax(-1).tolist()
    assert all(p.enc.step_pos == [] for p in jobs["answer"]) and all(len(p.enc.step_pos) == 1 for p in jobs["step"])


def test_deletion_orders_rank_words_by_score_and_shuffle_by_seed_and_index():
    from types import SimpleNamespace

    from cott.faithfulness import _ranked, _shuffled

    p = SimpleNamespace(word=[3, 0, 0, 1, 2, 3, 4])  # a word per scored token, sub-tokens repeat their word
    assert _ranked(p, [0.1, 0.5, -0.2, 0.5, 0.0]) == [1, 3, 0, 4, 2]  # highest first, ties: earlier word first
    expected = [0, 1, 2, 3, 4]
    random.Random("7:2").shuffle(expected)
    assert _shuffled(p, 7, 2) == expected == _shuffled(p, 7, 2)
    assert sorted(_shuffled(p, 0, 5)) == [0, 1, 2, 3, 4]
    assert {tuple(_shuffled(p, 7, i)) for i in range(6)} != {tuple(expected)}  # another input, another order
