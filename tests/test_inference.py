"""Two-pass inference: p(I|x) over several [C] slots, Step II under Î or a forced step, rectification and the
batched top-k marginal, all checked against hand computations and per-input Step II sweeps."""
import math

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from cott import CoTTModel, CoTTPipeline, Template, Verbalizer
from cott.inference import answer_given_steps, reason, sweep
from cott.relation_input import parse_marked
from helpers import typed_config

TEMPLATE = '[T:marked] The [C] " [T:subj] " and the [C] " [T:obj] " : " [T:subj] " [A] " [T:obj] " .'
ANSWERS = {"Work_For": ["works for"], "Live_In": ["lives in"], "OrgBased_In": ["based in"], "no_relation": ["unrelated to"]}
STEPS = {"Peop": ["person"], "Org": ["organization"], "Loc": ["location"]}  # two slots: 9 known steps
TEXTS = ["[[ada]] works for {{acme}} .", "[[acme]] is based in {{paris}} .", "my [[friend]] lives in {{paris}} .",
         "a big red [[house]] near {{the}} house"]


def relation_model(backbone, seed=0) -> CoTTModel:
    torch.manual_seed(seed)
    mlm = AutoModelForMaskedLM.from_pretrained(backbone)
    return CoTTModel(mlm, AutoTokenizer.from_pretrained(backbone), Template(TEMPLATE), Verbalizer(list(ANSWERS), ANSWERS),
                     Verbalizer(list(STEPS), STEPS), proj_dim=16).eval()


@pytest.fixture(scope="module")
def model(lively_bert):
    return relation_model(lively_bert)


@pytest.fixture(scope="module")
def inputs():
    return [parse_marked(t) for t in TEXTS]


def _distinct(rows: torch.Tensor, gap: float = 0.02) -> bool:
    """Every two rows differ somewhere by more than ``gap``: a test over them can tell the inputs apart."""
    return all((rows[i] - rows[j]).abs().max() > gap for i in range(len(rows)) for j in range(i))


# ---- p(I|x) --------------------------------------------------------------------------------------------------


def test_known_steps_are_every_slot_combination_first_slot_slowest(model):
    known = model.known_steps()
    assert len(known) == 9 and len(set(known)) == 9
    assert known[:4] == [("Peop", "Peop"), ("Peop", "Org"), ("Peop", "Loc"), ("Org", "Peop")]
    assert known[-1] == ("Loc", "Loc")


def test_two_slot_step_distribution_from_hand_written_logits(model):
    slot_probs = torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]],   # input 0: subject, object
                               [[0.2, 0.2, 0.6], [0.7, 0.2, 0.1]]])  # input 1
    joint = model.step_distribution(slot_probs.log() + 4.0)  # a constant shift changes nothing
    index = {label: i for i, label in enumerate(model.step.labels)}
    for n in range(2):
        for j, (subj, obj) in enumerate(model.known_steps()):
            want = slot_probs[n, 0, index[subj]] * slot_probs[n, 1, index[obj]]
            assert joint[n, j].item() == pytest.approx(want.item(), rel=1e-5), (n, subj, obj)
    # written out: (Peop, Org) of input 0 is 0.5 * 0.6, (Org, Peop) is 0.3 * 0.1; (Loc, Peop) of input 1 0.6 * 0.7
    assert joint[0, 1].item() == pytest.approx(0.30) and joint[0, 3].item() == pytest.approx(0.03)
    assert joint[1, 6].item() == pytest.approx(0.42)
    assert torch.allclose(joint.sum(-1), torch.ones(2))


def test_step_temperature_flattens_each_slot(model):
    slot_probs = torch.tensor([[[0.64, 0.32, 0.04], [0.09, 0.81, 0.1]]])
    try:
        model.step_temperature = 2.0
        joint = model.step_distribution(slot_probs.log())
    finally:
        model.step_temperature = 1.0
    root = slot_probs.sqrt()
    per_slot = root / root.sum(-1, keepdim=True)  # p^(1/T), renormalised per slot
    assert joint[0, 1].item() == pytest.approx((per_slot[0, 0, 0] * per_slot[0, 1, 1]).item(), rel=1e-5)
    assert joint[0, 8].item() == pytest.approx((per_slot[0, 0, 2] * per_slot[0, 1, 2]).item(), rel=1e-5)


def test_single_slot_step_distribution_is_the_softmax():
    model = CoTTModel.__new__(CoTTModel)  # step_distribution reads nothing but the temperature
    torch.nn.Module.__init__(model)
    model.step_temperature = 1.0
    logits = torch.tensor([[[2.0, 0.0, -1.0]], [[0.0, 1.0, 3.0]]])
    assert torch.allclose(model.step_distribution(logits), logits[:, 0].softmax(-1))


def test_reason_reads_p_steps_at_each_slot_in_the_order_of_the_known_steps(model, inputs):
    res = reason(model, inputs)
    batch = model.collate([model.template.encode(model.tokenizer, f, None, 128) for f in inputs])
    with torch.no_grad():
        per_slot = model(**batch)["step_logits"].softmax(-1)  # (inputs, 2 slots, 3 labels)
    index = {label: i for i, label in enumerate(model.step.labels)}
    for j, (subj, obj) in enumerate(model.known_steps()):
        want = per_slot[:, 0, index[subj]] * per_slot[:, 1, index[obj]]
        assert torch.allclose(res["p_steps"][:, j], want, atol=1e-6), (subj, obj)
    assert _distinct(res["p_steps"])


# ---- Step II, rectification, the top-k marginal --------------------------------------------------------------


def test_p_answer_step_is_the_sweep_row_of_step_hat_and_rectify_mixes_it_by_hand(model, inputs):
    res, table = reason(model, inputs), sweep(model, inputs)
    assert table.shape == (len(inputs), 9, len(ANSWERS))
    assert len(set(res["step_hat"].tolist())) > 1  # the inputs have different Î
    for i in range(len(inputs)):
        hat = int(res["step_hat"][i])
        p_hat = res["p_steps"][i].max().item()
        assert hat == int(res["p_steps"][i].argmax()) and res["p_step_hat"][i].item() == pytest.approx(p_hat)
        assert torch.allclose(res["p_answer_step"][i], table[i, hat], atol=1e-5)
        want = p_hat * table[i, hat] + (1 - p_hat) * res["p_answer"][i]
        assert torch.allclose(res["p_rectified"][i], want, atol=1e-5)
    assert _distinct(res["p_answer_step"]) and _distinct(res["p_rectified"])


@pytest.mark.parametrize("k", [2, 3])
def test_batched_top_k_marginal_equals_per_input_sweeps(model, inputs, k):
    res, table = reason(model, inputs, top_k=k), sweep(model, inputs)
    assert res["p_answer_topk"].shape == (len(inputs), k, len(ANSWERS))
    for i in range(len(inputs)):
        top = res["topk"][i].tolist()
        assert top == res["p_steps"][i].argsort(descending=True)[:k].tolist()
        mass = res["p_steps"][i, top].sum()
        want = (res["p_steps"][i, top, None] * table[i, top]).sum(0) + (1 - mass) * res["p_answer"][i]
        assert torch.allclose(res["p_answer_topk"][i], table[i, top], atol=1e-5)
        assert torch.allclose(res["p_marginal"][i], want, atol=1e-5)
        alone = reason(model, [inputs[i]], top_k=k)  # one input at a time gives the same numbers
        for key in ("p_answer", "p_steps", "p_answer_step", "p_rectified", "p_marginal", "p_answer_topk"):
            assert torch.allclose(alone[key][0], res[key][i], atol=1e-5), (i, key)
    assert _distinct(res["p_marginal"])
    assert len({tuple(t) for t in res["topk"].tolist()}) > 1  # the inputs have different top-k steps


def test_top_k_over_every_step_is_the_exact_marginal(model, inputs):
    res, table = reason(model, inputs, top_k=50), sweep(model, inputs)  # k is capped at the 9 known steps
    assert res["topk"].shape == (len(inputs), 9)
    exact = (res["p_steps"][:, :, None] * table).sum(1)
    assert torch.allclose(res["p_marginal"], exact, atol=1e-5)


def test_a_forced_step_per_input_beside_step_hat_and_free_text(model, inputs):
    res = reason(model, inputs[:3])
    known = model.known_steps()
    other = next(j for j in range(9) if j != int(res["step_hat"][0]))
    forced = [model.step_phrase(known[other]), None, ["a big", "house"]]
    got, table = reason(model, inputs[:3], forced), sweep(model, inputs[:3])
    assert torch.allclose(got["p_answer_step"][0], table[0, other], atol=1e-5)
    assert got["p_step_weight"][0].item() == pytest.approx(got["p_steps"][0, other].item())
    w = got["p_steps"][0, other]
    assert torch.allclose(got["p_rectified"][0], w * table[0, other] + (1 - w) * got["p_answer"][0], atol=1e-5)
    assert torch.allclose(got["p_answer_step"][1], res["p_answer_step"][1], atol=1e-6)  # None: Î as before
    assert got["p_step_weight"][1].item() == pytest.approx(res["p_step_hat"][1].item())
    assert math.isnan(got["p_step_weight"][2].item())  # free text has no p(step|x)
    free = model.template.encode(model.tokenizer, inputs[2], ["a big", "house"], 128)
    with torch.no_grad():
        direct = model(**model.collate([free]))["answer_logits"].softmax(-1)[0]
    assert torch.allclose(got["p_answer_step"][2], direct, atol=1e-5)


def test_a_long_input_is_cut_to_128_tokens_by_default(model):
    """The tiny backbones have 128 positions: a default other than 128 would fail or read another prompt."""
    long = parse_marked("[[ada]] works for {{acme}} " + "and a big red house near the house " * 40)
    by_default, cut = reason(model, [long], top_k=2), reason(model, [long], max_length=128, top_k=2)
    for key in ("p_answer", "p_steps", "p_answer_step", "p_marginal"):
        assert torch.equal(by_default[key], cut[key]), key
    assert torch.equal(sweep(model, [long]), sweep(model, [long], max_length=128))
    pair = [(long, ["person", "location"])]
    assert torch.equal(answer_given_steps(model, pair), answer_given_steps(model, pair, max_length=128))


def _prompt_lengths(model, run) -> list[int]:
    """The token width of every forward pass ``run()`` makes."""
    widths = []
    hook = model.register_forward_hook(lambda module, args, kwargs, out: widths.append(kwargs["input_ids"].shape[1]),
                                       with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return widths


def test_max_length_cuts_every_prompt_of_both_passes_and_the_sweep(model):
    long = parse_marked("[[ada]] works for {{acme}} " + "and a big red house near the house " * 40)
    assert _prompt_lengths(model, lambda: reason(model, [long], max_length=40, top_k=3)) == [40, 40]
    assert _prompt_lengths(model, lambda: sweep(model, [long], max_length=40)) == [40]
    assert _prompt_lengths(model, lambda: answer_given_steps(model, [(long, ["person", "location"])], 40)) == [40]


def test_a_forced_step_that_overflows_only_the_step_two_prompt_flags_its_input(model, inputs):
    """Step I fits in max_length, but the words of a long forced step push the Step II prompt past it."""
    x = inputs[0]
    fits = len(model.template.encode(model.tokenizer, x, None, 10_000).input_ids)  # the known steps are one token each
    long_step = ["person person person", "location"]
    assert len(model.template.encode(model.tokenizer, x, long_step, 10_000).input_ids) > fits
    assert reason(model, [x, x], [None, long_step], max_length=fits)["truncated"] == [False, True]


def test_one_step_unless_top_k_asks_for_more(model, inputs):
    res = reason(model, inputs)
    assert res["topk"].shape == (len(inputs), 1) and "p_marginal" not in res and "p_answer_topk" not in res
    assert "p_marginal" not in reason(model, inputs, top_k=1) and "p_marginal" not in reason(model, inputs, top_k=0)
    assert _forward_sizes(model, lambda: reason(model, inputs)) == [len(inputs), len(inputs)]
    assert _forward_sizes(model, lambda: reason(model, inputs, top_k=3)) == [len(inputs), 4 * len(inputs)]


def _forward_sizes(model, run) -> list[int]:
    """The batch size of every forward pass ``run()`` makes: Step II passes are bounded by their batch_size."""
    sizes = []
    hook = model.register_forward_hook(lambda module, args, kwargs, out: sizes.append(len(out["answer_logits"])),
                                       with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return sizes


def test_step_two_passes_are_batched_by_batch_size(model, inputs):
    eight = (inputs * 2)[:8]  # 8 inputs x 9 steps = 72 Step II prompts
    assert _forward_sizes(model, lambda: sweep(model, eight)) == [64, 8]
    assert _forward_sizes(model, lambda: sweep(model, eight, batch_size=30)) == [30, 30, 12]
    pairs = [(inputs[0], ["person", "location"])] * 65
    assert _forward_sizes(model, lambda: answer_given_steps(model, pairs)) == [64, 1]
    assert _forward_sizes(model, lambda: answer_given_steps(model, pairs, batch_size=65)) == [65]


def test_sweep_in_small_batches_equals_one_batch(model, inputs):
    assert torch.allclose(sweep(model, inputs, batch_size=4), sweep(model, inputs, batch_size=64), atol=1e-5)


def test_pipeline_top_k_of_several_inputs_equals_their_sweeps(model):
    pipe = CoTTPipeline(model, typed_config(kind="relation", max_length=64))
    preds, sweeps = pipe(TEXTS, top_k=3), pipe.sweep(TEXTS)
    assert len({p.step for p in preds}) > 1
    for pred, sw in zip(preds, sweeps):
        top = sorted(range(9), key=lambda j: -pred.p_steps[j])[:3]
        mass = sum(pred.p_steps[j] for j in top)
        want = [sum(pred.p_steps[j] * sw.probs[j][y] for j in top) + (1 - mass) * pred.p_answer[y] for y in range(4)]
        assert pred.p_marginal == pytest.approx(want, abs=1e-5)
        assert pred.p_answer_step == pytest.approx(sw.probs[pipe.steps.index(pred.step)], abs=1e-5)
        assert pred.step == " | ".join(model.known_steps()[top[0]]) and pred.step_prob == pytest.approx(pred.p_steps[top[0]])
        assert sw.p_steps == pytest.approx(pred.p_steps, abs=1e-6)


def test_a_model_without_steps_answers_directly(lively_bert):
    torch.manual_seed(0)
    mlm = AutoModelForMaskedLM.from_pretrained(lively_bert)
    prompt = CoTTModel(mlm, AutoTokenizer.from_pretrained(lively_bert), Template('[T:marked] " [T:subj] " [A] " [T:obj] " .'),
                       Verbalizer(list(ANSWERS), ANSWERS), proj_dim=16).eval()
    res = reason(prompt, [parse_marked(t) for t in TEXTS], top_k=3)
    assert set(res) == {"p_answer", "p_rectified", "truncated"} and torch.equal(res["p_answer"], res["p_rectified"])
    with pytest.raises(ValueError, match="^this model has no intermediate step to sweep$"):
        sweep(prompt, [parse_marked(TEXTS[0])])


def test_a_prediction_says_when_max_length_cut_its_text(tmp_path_factory, tiny_bert, toy_data):
    """Only an input longer than the checkpoint's max length is flagged; a step injected into it is flagged too."""
    from cott import CoTTPipeline, save_checkpoint
    from helpers import toy_model

    model, _ = toy_model(tiny_bert, toy_data)
    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(tiny_bert), "max_length": 24}
    pipe = CoTTPipeline.from_pretrained(str(save_checkpoint(model, tmp_path_factory.mktemp("cut") / "c", meta)),
                                        device="cpu")
    short, long = pipe(["a cat", "a cat " + "and a big red dog " * 10])
    assert (short.truncated, long.truncated) == (False, True)
    assert pipe("a cat " + "and a big red dog " * 10, step="vehicle").truncated
    assert not pipe("a cat", step="vehicle").truncated
