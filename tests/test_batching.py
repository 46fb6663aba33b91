"""Training batches [Step I | Step II gold | Step II counterfactual] and the prompt-length order of evaluation."""
import random
from collections import Counter

import pytest
import torch

from cott import Template
from cott.batching import TrainingBatcher, by_prompt_length, prompt_lengths
from cott.data import Example
from helpers import toy_model

N = 5


@pytest.fixture(scope="module")
def toy(tiny_bert, toy_data):
    return toy_model(tiny_bert, toy_data)


def _text(model, ids) -> str:
    return model.tokenizer.decode([i for i in ids.tolist() if i != model.tokenizer.pad_token_id])


def test_rows_are_step_one_then_gold_then_counterfactual(toy):
    model, examples = toy
    batch = TrainingBatcher(model, 48)(examples[:N], random.Random(0))
    mask = model.tokenizer.mask_token_id
    assert batch["input_ids"].shape[0] == 3 * N
    assert batch["answer"].tolist() == [model.answer.index(e.label) for e in examples[:N]]
    assert batch["step"].tolist() == [[model.step.index(e.step[0])] for e in examples[:N]]
    for i, e in enumerate(examples[:N]):
        step1, gold, cf = (batch["input_ids"][g * N + i] for g in range(3))
        assert e.fields["text"] in _text(model, step1) and e.fields["text"] in _text(model, cf)
        assert step1[batch["step_pos"][i, 0]] == mask  # Step I: the model writes the step at [C]
        assert (batch["step_pos"][N:] == -1).all()  # Step II rows have no [C] mask
        assert (step1 == mask).sum() == 2 and (gold == mask).sum() == 1 and (cf == mask).sum() == 1
        assert f"is {e.step[0]}" in _text(model, gold) and f"is {e.step[0]}" not in _text(model, cf)
        for g in range(3):
            row = g * N + i
            assert batch["input_ids"][row, batch["answer_pos"][row]] == mask  # [A] stays a mask in every row


def test_rows_left_out_for_ablations_and_single_step_models(toy, tiny_bert, toy_data):
    model, examples = toy
    assert TrainingBatcher(model, 48, counterfactual=False)(examples[:N], random.Random(0))["input_ids"].shape[0] == 2 * N
    no_step2 = TrainingBatcher(model, 48, step2=False)(examples[:N], random.Random(0))
    assert no_step2["input_ids"].shape[0] == N and "step" in no_step2
    prompt, _ = toy_model(tiny_bert, toy_data, method="prompt")
    single = TrainingBatcher(prompt, 48)(examples[:N], random.Random(0))
    assert single["input_ids"].shape[0] == N and "step" not in single
    assert single["answer"].tolist() == [prompt.answer.index(e.label) for e in examples[:N]]


def test_allowed_answers_come_only_with_counterfactual_rows(toy, tiny_bert, toy_data):
    """The step-answer table is read only when the batch has counterfactual rows for the step-following term."""
    model, examples = toy
    table = {s: [examples[0].label] for s in model.step.labels}
    with_rows = TrainingBatcher(model, 48, step_answers=table)(examples[:N], random.Random(0))
    assert with_rows["counterfactual_allowed"].shape == (N, len(model.answer.labels))
    for batcher in (TrainingBatcher(model, 48, counterfactual=False, step_answers=table),
                    TrainingBatcher(model, 48, step2=False, step_answers=table),
                    TrainingBatcher(toy_model(tiny_bert, toy_data, method="prompt")[0], 48, step_answers=table)):
        assert batcher.allowed is None
        assert "counterfactual_allowed" not in batcher(examples[:N], random.Random(0))


def _counterfactual_steps(model, batch, n):
    words = {model.step_phrase((s,))[0]: s for s in model.step.labels}
    return [next(s for w, s in words.items() if f"is {w}" in _text(model, batch["input_ids"][2 * n + i])) for i in range(n)]


def test_uniform_counterfactuals_are_every_other_step_never_the_gold_one_and_reproducible(tiny_bert):
    template = Template("[T] The kind is [C] . The thing is [A] .")
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from cott import CoTTModel, Verbalizer

    steps = ["cat", "dog", "horse", "car"]  # four steps: three others to draw from
    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert), template,
                      Verbalizer(["bus", "truck"]), Verbalizer(steps), proj_dim=8)
    examples = [Example({"text": "i saw a bus today"}, (steps[i % 4],), "bus") for i in range(40)]
    batcher = TrainingBatcher(model, 48)
    batch = batcher(examples, random.Random(3))
    drawn = _counterfactual_steps(model, batch, 40)
    assert all(d != e.step[0] for d, e in zip(drawn, examples))
    for gold in steps:  # each gold step's counterfactuals cover the three other steps
        assert set(d for d, e in zip(drawn, examples) if e.step[0] == gold) == set(steps) - {gold}
    again = batcher(examples, random.Random(3))
    assert torch.equal(again["input_ids"], batch["input_ids"])
    # the draw is rejection sampling from the given random stream, as runs before model sampling drew it
    rng, expected = random.Random(3), []
    for e in examples:
        other = e.step
        while other == e.step:
            other = (steps[rng.randrange(4)],)
        expected.append(other[0])
    assert drawn == expected
    # uniform ignores the model's p(I|x): a model sure of one step changes nothing
    peaked = CoTTModel(model.mlm, model.tokenizer, template, Verbalizer(["bus", "truck"]), Verbalizer(steps), proj_dim=8,
                       soft_verbalizer=True)
    with torch.no_grad():
        peaked.step_soft.bias.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0]))
    assert _counterfactual_steps(peaked, TrainingBatcher(peaked, 48)(examples, random.Random(3)), 40) == expected


def test_model_sampled_counterfactuals_follow_p_of_the_step_without_the_gold_one(tiny_bert):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from cott import CoTTModel, Verbalizer

    steps = ["cat", "dog", "horse"]
    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert),
                      Template("[T] The kind is [C] . The thing is [A] ."), Verbalizer(["bus", "truck"]), Verbalizer(steps),
                      proj_dim=8, soft_verbalizer=True).eval()
    with torch.no_grad():  # p(I|x): cat 0, dog ~1, horse ~0 for every input
        model.step_soft.bias.copy_(torch.tensor([-30.0, 10.0, 0.0]))
    examples = [Example({"text": "a big red bus"}, ("cat",), "bus")] * 30 + [Example({"text": "a small bus"}, ("dog",), "truck")] * 30
    drawn = _counterfactual_steps(model, TrainingBatcher(model, 48, sampling="model")(examples, random.Random(0)), 60)
    assert Counter(drawn[:30]) == {"dog": 30}  # gold cat: dog is the step the model confuses it with
    assert Counter(drawn[30:]) == {"horse": 30}  # gold dog is never drawn: horse outweighs cat
    with pytest.raises(ValueError, match=r"^counterfactual sampling must be one of \('uniform', 'model'\), not 'hard'$"):
        TrainingBatcher(model, 48, sampling="hard")
    with torch.no_grad():  # a model certain of the gold step (p exactly 0 elsewhere) still gets counterfactuals
        model.step_soft.bias.copy_(torch.tensor([1e4, -1e4, -1e4]))
    certain = [Example({"text": "a big red bus"}, ("cat",), "bus")] * 40
    drawn = _counterfactual_steps(model, TrainingBatcher(model, 48, sampling="model")(certain, random.Random(0)), 40)
    assert set(drawn) == {"dog", "horse"}  # then uniformly among the others


def test_a_batch_lives_on_the_models_device_and_is_cut_to_128_tokens_by_default(tiny_bert, toy_data):
    """The meta device stands in for a GPU: every tensor of the batch must follow the model there."""
    model, examples = toy_model(tiny_bert, toy_data)
    long = [Example({"text": "a big red bus near the house " * 40}, ("vehicle",), "bus")] * 2
    batch = TrainingBatcher(model, step2=True)(long, random.Random(0))  # the tiny BERT has 128 positions
    assert batch["input_ids"].shape == (6, 128)
    model.to("meta")
    table = {s: [examples[0].label] for s in model.step.labels}
    batch = TrainingBatcher(model, 48, step_answers=table)(examples[:N], random.Random(0))
    assert {k: v.device.type for k, v in batch.items()} == {k: "meta" for k in batch}
    assert "counterfactual_allowed" in batch
    assert batch["answer"].dtype == batch["step"].dtype == torch.long


def test_counterfactuals_need_two_known_steps(tiny_bert):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from cott import CoTTModel, Verbalizer

    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert),
                      Template("[T] The kind is [C] . The thing is [A] ."), Verbalizer(["bus", "truck"]), Verbalizer(["cat"]),
                      proj_dim=8)
    with pytest.raises(ValueError, match="^counterfactual steps need at least two known steps$"):
        TrainingBatcher(model, 48)
    assert TrainingBatcher(model, 48, counterfactual=False).counterfactual is False


def test_by_prompt_length_sorts_shortest_first_and_keeps_the_order_of_equals(toy):
    model, _ = toy
    texts = ["a big red bus near the house today", "a cat", "a dog", "there is a truck", "a bus", "i saw a horse"]
    examples = [Example({"text": t}, ("vehicle",), "bus") for t in texts]
    lengths = prompt_lengths(model, examples, 48)
    want = [model.template.encode(model.tokenizer, e.fields, None, 48).input_ids for e in examples]
    assert lengths == [len(ids) for ids in want]
    assert len(set(lengths)) > 2
    ordered = by_prompt_length(model, examples, 48)
    assert [e.fields["text"] for e in ordered] == ["a cat", "a dog", "a bus", "there is a truck", "i saw a horse",
                                                   "a big red bus near the house today"]
    assert prompt_lengths(model, examples, 16)[0] == 16  # cut to max_length


@pytest.mark.parametrize("sampling", ["uniform", "model"])
def test_a_share_of_a_batch_draws_the_counterfactuals_the_whole_batch_would(tiny_bert, sampling):
    """Data-parallel training: a process's share, told which examples come before it, gets the same I* as when the
    whole batch is drawn at once (and not the draws of a batch of its own)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from cott import CoTTModel, Verbalizer

    steps = ["cat", "dog", "horse", "car"]  # four steps: three others to draw from
    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert),
                      Template("[T] The kind is [C] . The thing is [A] ."), Verbalizer(["bus", "truck"]), Verbalizer(steps),
                      proj_dim=8).eval()
    examples = [Example({"text": "i saw a bus today"}, (steps[i % 4],), "bus") for i in range(24)]
    batcher = TrainingBatcher(model, 48, sampling=sampling)
    whole = _counterfactual_steps(model, batcher(examples, random.Random(5)), 24)
    share = _counterfactual_steps(model, batcher(examples[16:], random.Random(5), before=examples[:16]), 8)
    alone = _counterfactual_steps(model, batcher(examples[16:], random.Random(5)), 8)
    assert share == whole[16:] and alone != share


@pytest.mark.parametrize("mentions_at", [5, 1100])  # inside the first TEXT_TOKEN_LIMIT tokens of the text, past them
def test_training_and_inference_build_the_same_prompts_for_a_long_relation_text(lively_bert, toy_data, mentions_at):
    """A relation text over TEXT_TOKEN_LIMIT (1,024) tokens: the Step I and gold Step II prompts the training batch
    holds are those ``reason`` feeds the model (same input ids, same probabilities), wherever the mentions are."""
    from cott.inference import reason
    from cott.relation_input import parse_marked
    from cott.template import TEXT_TOKEN_LIMIT

    model, _ = toy_model(lively_bert, toy_data, template='[T:marked] " [T:subj] " is a [C] : [A] " [T:obj] " .')
    filler = lambda n: " ".join(["house"] * n)  # noqa: E731  one token each
    fields = parse_marked(f"{filler(mentions_at)} [[ada]] likes {{{{acme}}}} {filler(1300 - mentions_at)}")
    assert len(model.template.text_ids(model.tokenizer, fields["marked"], limit=10_000)) > TEXT_TOKEN_LIMIT
    example = Example(fields, ("animal",), "cat")
    batch = TrainingBatcher(model, 48, counterfactual=False)([example], random.Random(0))
    seen = []
    collate = model.collate
    model.collate = lambda encodings: seen.append([e.input_ids for e in encodings]) or collate(encodings)
    try:
        r = reason(model, [fields], [model.step_phrase(("animal",))], max_length=48)
    finally:
        del model.collate
    step1, step2 = seen[0][0], seen[1][0]
    assert batch["input_ids"][0].tolist() == step1 and batch["input_ids"][1].tolist() == step2
    model.eval()
    with torch.no_grad():
        p = model(**{k: v for k, v in batch.items() if k not in ("answer", "step")})["answer_logits"].softmax(-1)
    assert torch.allclose(p[0], r["p_answer"][0], atol=1e-6) and torch.allclose(p[1], r["p_answer_step"][0], atol=1e-6)
    assert r["truncated"] == [True]
    assert prompt_lengths(model, [example], 48) == [len(step1)]  # the lengths that order batches are these prompts'
