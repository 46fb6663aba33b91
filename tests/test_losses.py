"""The training objective: the counterfactual contrastive loss by hand, and its wiring inside the full CoTT loss."""
import math
import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cott.batching import TrainingBatcher
from cott.losses import LossConfig, cott_loss, counterfactual_contrastive_loss, step_following_loss
from helpers import toy_model

# Hand-written projections of two examples: not unit length, so the loss must normalise them.
Z_X = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
Z_GOLD = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # cosines with Z_X: 0.6 and 1
Z_CF = torch.tensor([[0.0, -2.0], [1.0, 1.0]])  # cosines with Z_X: 0 and 1/sqrt(2)
R = 1 / math.sqrt(2)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_contrastive_loss_hand_computed(tau):
    # InfoNCE of each example over [positive, its own counterfactual]: log(1 + e^((neg - pos) / tau))
    want = (math.log(1 + math.exp((0 - 0.6) / tau)) + math.log(1 + math.exp((R - 1) / tau))) / 2
    got = counterfactual_contrastive_loss(Z_X, Z_GOLD, Z_CF, tau=tau)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_contrastive_loss_defaults_to_tau_one_tenth_without_in_batch_negatives():
    assert counterfactual_contrastive_loss(Z_X, Z_GOLD, Z_CF).item() == pytest.approx(
        counterfactual_contrastive_loss(Z_X, Z_GOLD, Z_CF, tau=0.1, in_batch=False).item())
    assert LossConfig() == LossConfig(step2=True, contrastive_weight=1.0, tau=0.1, in_batch_negatives=False)


@pytest.mark.parametrize("in_batch", [False, True])
def test_contrastive_loss_stays_on_the_device_of_its_inputs(in_batch):
    """The meta device stands in for a GPU: the targets must be made where the projections are."""
    loss = counterfactual_contrastive_loss(Z_X.to("meta"), Z_GOLD.to("meta"), Z_CF.to("meta"), in_batch=in_batch)
    assert loss.device.type == "meta" and loss.shape == ()


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_contrastive_loss_with_in_batch_negatives_hand_computed(tau):
    # Example 1: positive g1 (0.6), negatives the other example's gold g2 (0) and its counterfactual c1 (0).
    first = -0.6 / tau + math.log(math.exp(0.6 / tau) + math.exp(0 / tau) + math.exp(0 / tau))
    # Example 2: positive g2 (1), negatives g1 (0.8) and its counterfactual c2 (1/sqrt(2)).
    second = -1 / tau + math.log(math.exp(0.8 / tau) + math.exp(1 / tau) + math.exp(R / tau))
    got = counterfactual_contrastive_loss(Z_X, Z_GOLD, Z_CF, tau=tau, in_batch=True)
    assert got.item() == pytest.approx((first + second) / 2, rel=1e-5)


def test_contrastive_loss_lower_for_matching_pairs():
    torch.manual_seed(0)
    z_x = torch.randn(8, 16)
    close = z_x + 0.05 * torch.randn(8, 16)
    far = torch.randn(8, 16)
    matching = counterfactual_contrastive_loss(z_x, close, far, tau=0.1)
    mismatched = counterfactual_contrastive_loss(z_x, far, close, tau=0.1)
    assert matching < mismatched
    assert counterfactual_contrastive_loss(z_x, close, far, in_batch=True) < counterfactual_contrastive_loss(z_x, far, close, in_batch=True)


# ---- the full CoTT loss: which rows are the anchor, the positive and the negative -----------------------------


class FreeRows(nn.Module):
    """Stands in for ``CoTTModel`` inside ``cott_loss``: each row's g(h), answer logits and (Step I rows) step
    logits are free parameters, so the numbers are hand-written and one gradient step moves exactly them."""

    def __init__(self, projections, answer_logits, step_logits):
        super().__init__()
        self.z = nn.Parameter(projections.clone())
        self.answer = nn.Parameter(answer_logits.clone())
        self.step = nn.Parameter(step_logits.clone())

    def forward(self, input_ids, attention_mask, answer_pos, step_pos=None, project=False):
        out = {"answer_logits": self.answer[input_ids[:, 0]], "step_logits": self.step}
        if project:
            out["answer_projection"] = self.z[input_ids[:, 0]]
        return out


def _free_batch(n, answers, steps):
    """A batch of 3n rows [Step I | Step II gold | Step II counterfactual]; input_ids[:, 0] is the row number."""
    rows = torch.arange(3 * n)
    return {"input_ids": rows[:, None], "attention_mask": torch.ones(3 * n, 1, dtype=torch.long),
            "answer_pos": torch.zeros(3 * n, dtype=torch.long), "step_pos": torch.zeros(3 * n, 1, dtype=torch.long),
            "answer": torch.tensor(answers), "step": torch.tensor(steps)[:, None]}


def _hand_model():
    answer_logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]] * 3) + torch.arange(6.0)[:, None] / 10
    step_logits = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]])
    return FreeRows(torch.cat([Z_X, Z_GOLD, Z_CF]), answer_logits, step_logits), _free_batch(2, [0, 1], [0, 1])


@pytest.mark.parametrize("tau", [0.5, 0.1])
@pytest.mark.parametrize("weight", [1.0, 2.0, 0.25])
def test_full_loss_hand_computed(tau, weight):
    """Every part of L = L_I + L_y1 + L_y2 + λ L_cc from hand-written logits and projections."""
    model, batch = _hand_model()
    loss, parts = cott_loss(model, batch, LossConfig(contrastive_weight=weight, tau=tau))
    ce = lambda logits, gold: (torch.logsumexp(logits, -1) - logits[range(len(gold)), gold]).mean().item()  # noqa: E731
    a = model.answer.detach()
    want = {"L_y1": ce(a[:2], [0, 1]), "L_y2": ce(a[2:4], [0, 1]), "L_I": ce(model.step.detach()[:, 0], [0, 1]),
            "L_cc": weight * (math.log(1 + math.exp((0 - 0.6) / tau)) + math.log(1 + math.exp((R - 1) / tau))) / 2}
    assert parts == pytest.approx(want, rel=1e-5)
    assert loss.item() == pytest.approx(sum(want.values()), rel=1e-5)
    _, in_batch = cott_loss(model, batch, LossConfig(contrastive_weight=weight, tau=tau, in_batch_negatives=True))
    assert in_batch["L_cc"] == pytest.approx(weight * counterfactual_contrastive_loss(Z_X, Z_GOLD, Z_CF, tau, True).item(), rel=1e-5)


def test_step_loss_of_a_two_slot_step_averages_over_every_slot():
    """A relation's step fills two [C] slots: L_I is the cross-entropy of each slot against its own gold label."""
    model, batch = _hand_model()
    model.step = nn.Parameter(torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 3.0], [1.0, 1.0, 0.0]]]))
    batch["step"] = torch.tensor([[0, 2], [2, 1]])
    _, parts = cott_loss(model, batch, LossConfig())
    logp = model.step.detach().log_softmax(-1)
    want = -(logp[0, 0, 0] + logp[0, 1, 2] + logp[1, 0, 2] + logp[1, 1, 1]) / 4
    assert parts["L_I"] == pytest.approx(want.item(), rel=1e-5)
    _, weighted = cott_loss(model, batch, LossConfig(step_weight=0.25))  # α scales L_I and nothing else
    assert weighted == pytest.approx(parts | {"L_I": 0.25 * parts["L_I"]}, rel=1e-5)


@pytest.mark.parametrize("in_batch", [False, True])
def test_contrastive_roles_follow_the_row_groups(in_batch):
    """Permuting the three row groups changes L_cc to the value of the permuted roles; permuting the examples
    alike in all three groups changes nothing."""
    model, batch = _hand_model()
    cfg = LossConfig(tau=0.5, in_batch_negatives=in_batch)
    groups = {"x": [0, 1], "gold": [2, 3], "cf": [4, 5]}
    z = {k: model.z.detach()[v] for k, v in groups.items()}
    for order in (("x", "gold", "cf"), ("x", "cf", "gold"), ("gold", "x", "cf"), ("cf", "gold", "x")):
        rows = torch.tensor([i for k in order for i in groups[k]])
        permuted = dict(batch, input_ids=batch["input_ids"][rows])
        want = counterfactual_contrastive_loss(*(z[k] for k in order), 0.5, in_batch).item()
        assert cott_loss(model, permuted, cfg)[1]["L_cc"] == pytest.approx(want, rel=1e-5), order
    before = cott_loss(model, batch, cfg)[1]
    swap = torch.tensor([1, 0, 3, 2, 5, 4])  # the two examples swapped in every group, their gold labels too
    swapped = dict(batch, input_ids=batch["input_ids"][swap], answer=batch["answer"][[1, 0]], step=batch["step"][[1, 0]])
    model.step.data = model.step.data[[1, 0]]
    assert cott_loss(model, swapped, cfg)[1] == pytest.approx(before, rel=1e-5)


@pytest.mark.parametrize("in_batch", [False, True])
def test_one_step_pulls_the_anchor_towards_the_gold_step_and_away_from_the_counterfactual(in_batch):
    """The full CoTT loss, one plain gradient step: cos(g(h_x), g(h_{x,I})) rises and cos(g(h_x), g(h_{x,I*}))
    falls, for every example (with in-batch negatives the other examples' states push too: the counterfactual's
    cosine falls on average, and the gap between the two rises for every example)."""
    n = 6
    gen = torch.Generator().manual_seed(0)
    model = FreeRows(torch.randn(3 * n, 8, generator=gen), torch.randn(3 * n, 3, generator=gen),
                     torch.randn(n, 1, 2, generator=gen))
    batch = _free_batch(n, [0, 1, 2, 0, 1, 2], [0, 1, 1, 0, 0, 1])

    def cosines():
        z = F.normalize(model.z.detach(), dim=-1)
        return (z[:n] * z[n : 2 * n]).sum(-1), (z[:n] * z[2 * n :]).sum(-1)

    gold_before, cf_before = cosines()
    loss, _ = cott_loss(model, batch, LossConfig(contrastive_weight=1.0, tau=0.5, in_batch_negatives=in_batch))
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    gold_after, cf_after = cosines()
    assert (gold_after > gold_before).all(), (gold_after - gold_before).tolist()
    assert (gold_after - cf_after > gold_before - cf_before).all()
    if in_batch:
        assert cf_after.mean() < cf_before.mean() - 1e-4
    else:
        assert (cf_after < cf_before).all(), (cf_after - cf_before).tolist()


# ---- the full CoTT loss on a tiny CoTT model -------------------------------------------------------------------

N = 6  # examples per batch: rows [Step I (N) | Step II gold (N) | Step II counterfactual (N)]


@pytest.fixture
def model_and_batch(tiny_bert, toy_data):
    model, examples = toy_model(tiny_bert, toy_data)
    model.eval()  # no dropout: the same batch gives the same numbers twice
    return model, TrainingBatcher(model, 48)(examples[:N], random.Random(0))


def _forward(model, batch, group):
    """The model's outputs on one row group (0 Step I, 1 Step II gold, 2 Step II counterfactual), encoded on its own."""
    keep = slice(group * N, (group + 1) * N)
    with torch.no_grad():
        return model(batch["input_ids"][keep], batch["attention_mask"][keep], batch["answer_pos"][keep],
                     batch["step_pos"][keep], project=True)


def test_each_part_reads_its_own_rows_of_a_real_model(model_and_batch):
    """L_y1 on Step I rows, L_y2 on gold Step II rows, L_I at Step I's [C] masks, L_cc with (Step I, gold, counterfactual)."""
    model, batch = model_and_batch
    loss, parts = cott_loss(model, batch, LossConfig(contrastive_weight=2.0, tau=0.2))
    step1, gold, cf = (_forward(model, batch, g) for g in range(3))
    want = {
        "L_y1": F.cross_entropy(step1["answer_logits"], batch["answer"]).item(),
        "L_y2": F.cross_entropy(gold["answer_logits"], batch["answer"]).item(),
        "L_I": F.cross_entropy(step1["step_logits"].flatten(0, 1), batch["step"].flatten()).item(),
        "L_cc": 2.0 * counterfactual_contrastive_loss(step1["answer_projection"], gold["answer_projection"],
                                                      cf["answer_projection"], tau=0.2).item(),
    }
    assert parts == pytest.approx(want, abs=1e-5)
    assert loss.item() == pytest.approx(sum(want.values()), abs=1e-5)
    _, off = cott_loss(model, batch, LossConfig(contrastive_weight=0.0))
    assert off == pytest.approx({k: want[k] for k in ("L_y1", "L_y2", "L_I")}, abs=1e-5)  # λ = 0: no L_cc part at all


def test_step1_only_and_single_step_models_have_only_their_parts(tiny_bert, toy_data):
    model, examples = toy_model(tiny_bert, toy_data)
    model.eval()
    batch = TrainingBatcher(model, 48, step2=False)(examples[:N], random.Random(0))
    assert batch["input_ids"].size(0) == N
    loss, parts = cott_loss(model, batch, LossConfig(step2=False))
    assert set(parts) == {"L_I", "L_y1"} and loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    prompt, _ = toy_model(tiny_bert, toy_data, method="prompt")
    prompt.eval()
    batch = TrainingBatcher(prompt, 48)(examples[:N], random.Random(0))
    loss, parts = cott_loss(prompt, batch, LossConfig())
    assert set(parts) == {"L_y1"} and loss.item() == pytest.approx(parts["L_y1"], rel=1e-6)


# The step-following term: the answer under a counterfactual step should lie within the answers that step allows.
@pytest.fixture
def toy(tiny_bert, toy_data):
    model, examples = toy_model(tiny_bert, toy_data)
    model.eval()  # no dropout: the same batch gives the same numbers twice
    return model, examples


LOGITS = torch.tensor([[2.0, 0.0, -1.0, 1.0], [0.0, 3.0, 1.0, -2.0]])
ALLOWED = torch.tensor([[False, True, True, False], [True, False, False, True]])


def test_following_set_form_is_minus_log_the_mass_inside_the_step():
    p = LOGITS.softmax(-1)
    want = -(torch.log(p[0, 1] + p[0, 2]) + torch.log(p[1, 0] + p[1, 3])) / 2
    assert step_following_loss(LOGITS, ALLOWED).item() == pytest.approx(want.item(), rel=1e-6)
    inside = torch.where(ALLOWED, torch.tensor(9.0), torch.tensor(-9.0))  # all mass inside: no loss left
    assert step_following_loss(inside, ALLOWED).item() == pytest.approx(0.0, abs=1e-6)


def test_following_distill_form_targets_the_direct_answer_within_the_step_and_leaves_it_alone():
    direct = torch.tensor([[0.0, 1.0, 3.0, 5.0], [2.0, 0.0, 0.0, 0.0]], requires_grad=True)
    logits = LOGITS.clone().requires_grad_(True)
    target = torch.zeros(2, 4)
    target[0, 1:3] = torch.tensor([1.0, 3.0]).softmax(-1)  # p(y|x) renormalised over A(I*) = {1, 2}
    target[1, [0, 3]] = torch.tensor([2.0, 0.0]).softmax(-1)
    want = -(target * logits.detach().log_softmax(-1)).sum(-1).mean()
    loss = step_following_loss(logits, ALLOWED, direct, form="distill")
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    loss.backward()
    assert direct.grad is None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="form"):
        step_following_loss(LOGITS, ALLOWED, form="margin")


def test_following_term_warns_nothing_in_either_form():
    """It runs at every training step: a warning here (e.g. torch's implicit softmax dimension) would flood the log."""
    direct = torch.tensor([[0.0, 1.0, 3.0, 5.0], [2.0, 0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step_following_loss(LOGITS, ALLOWED)
        step_following_loss(LOGITS, ALLOWED, direct, form="distill")


def test_following_term_in_the_full_loss_reads_the_counterfactual_rows(toy):
    model, examples = toy
    table = {}
    for e in examples:
        table.setdefault(e.step[0], set()).add(e.label)
    table = {s: sorted(a) for s, a in table.items()}
    batch = TrainingBatcher(model, 48, step_answers=table)(examples[:6], random.Random(0))
    allowed = batch["counterfactual_allowed"]
    words = {model.step_phrase((s,))[0]: s for s in model.step.labels}
    text = lambda row: model.tokenizer.decode(batch["input_ids"][row])  # noqa: E731
    for i in range(6):  # each row allows exactly the answers of the step written into its counterfactual row
        step = next(s for w, s in words.items() if f"is {w}" in text(12 + i))
        assert [model.answer.labels[j] for j in allowed[i].nonzero().flatten().tolist()] == table[step]
    torch.manual_seed(0)
    off = cott_loss(model, batch, LossConfig())[1]
    torch.manual_seed(0)
    on = cott_loss(model, batch, LossConfig(following_weight=2.0))[1]
    out = model(batch["input_ids"], batch["attention_mask"], batch["answer_pos"], batch["step_pos"])
    assert on["L_follow"] == pytest.approx(2.0 * step_following_loss(out["answer_logits"][12:], allowed).item(), rel=1e-4)
    torch.manual_seed(0)
    distill = cott_loss(model, batch, LossConfig(following_weight=1.0, following_form="distill"))[1]
    logits = out["answer_logits"]  # the distilled target is the Step I rows' own p(y|x), within each row's step
    assert distill["L_follow"] == pytest.approx(
        step_following_loss(logits[12:], allowed, logits[:6], form="distill").item(), rel=1e-4)
    assert off["L_follow"] == 0.0 and "L_follow" not in cott_loss(model, {k: v for k, v in batch.items()
                                                                          if k != "counterfactual_allowed"}, LossConfig())[1]
    assert "counterfactual_allowed" not in TrainingBatcher(model, 48)(examples[:6], random.Random(0))


def test_following_flags_reach_the_objective_and_its_schedule(toy):
    from train.cli import parser
    from train.loop import following_weight, objective

    model, _ = toy
    args = parser().parse_args(["--task", "jsonl", "--data", "x", "--no-contrastive", "--step-following", "0.5",
                                "--step-following-form", "distill", "--step-following-warmup", "0.25"])
    cfg, batcher = objective(model, args, 48, {"animal": ["cat"]})
    assert cfg.contrastive_weight == 0 and cfg.following_form == "distill"
    assert batcher.counterfactual and batcher.allowed is not None  # the term alone still needs counterfactual rows
    assert [following_weight(args, i, 100) for i in (0, 5, 25, 80)] == [0.0, 0.1, 0.5, 0.5]
    plain = parser().parse_args(["--task", "jsonl", "--data", "x"])
    assert following_weight(plain, 50, 100) == 0.0 and objective(model, plain, 48, {"animal": ["cat"]})[1].allowed is None
