"""cott.monitor on hand-made numbers: each signal from the distribution it names, AUROC against a pairwise count,
the threshold that keeps a share of in-scope inputs, and the recall of flagged out-of-scope inputs."""
from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from cott.monitor import SIGNALS, auroc, recall_at, signal_scores, threshold_at_retention

# two inputs, three answers; p̃ and p(y|x) differ in every row, so a signal read from the wrong one shows
P_RECTIFIED = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
P_ANSWER = torch.tensor([[0.5, 0.4, 0.1], [0.1, 0.8, 0.1]])
P_STEP = torch.tensor([0.9, 0.4])


def test_each_signal_by_hand():
    s = signal_scores(P_RECTIFIED, P_ANSWER, P_STEP)
    assert list(s) == list(SIGNALS)  # every signal, in the declared order
    torch.testing.assert_close(s["p_step"], P_STEP)
    torch.testing.assert_close(s["max_rectified"], torch.tensor([0.6, 0.6]))
    torch.testing.assert_close(s["max_direct"], torch.tensor([0.5, 0.8]))  # from p(y|x), not p̃
    torch.testing.assert_close(s["margin"], torch.tensor([0.3, 0.4]))  # p̃'s best minus its second best
    entropy = [-sum(p * math.log(p) for p in row) for row in P_RECTIFIED.tolist()]
    torch.testing.assert_close(s["neg_entropy"], -torch.tensor(entropy))  # of p̃, negated: peaked scores higher


def test_single_step_models_have_only_the_answer_signals():
    s = signal_scores(P_RECTIFIED, P_ANSWER)
    assert list(s) == [k for k in SIGNALS if k != "p_step"]


def test_rows_are_scored_each_on_their_own():
    whole = signal_scores(P_RECTIFIED, P_ANSWER, P_STEP)
    for i in range(2):
        one = signal_scores(P_RECTIFIED[i : i + 1], P_ANSWER[i : i + 1], P_STEP[i : i + 1])
        for k in SIGNALS:
            torch.testing.assert_close(one[k], whole[k][i : i + 1])


def test_a_peaked_answer_scores_higher_than_a_flat_one_on_every_answer_signal():
    peaked, flat = torch.tensor([[0.97, 0.02, 0.01]]), torch.full((1, 3), 1 / 3)
    high, low = signal_scores(peaked, peaked), signal_scores(flat, flat)
    assert all(high[k].item() > low[k].item() for k in high)
    torch.testing.assert_close(low["neg_entropy"], torch.tensor([-math.log(3)]))
    torch.testing.assert_close(low["margin"], torch.tensor([0.0]))


def test_edge_distributions_stay_finite():
    one_hot = signal_scores(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert one_hot["neg_entropy"].item() == 0.0  # 0 · log 0 counts as 0, not nan
    assert one_hot["margin"].item() == 1.0
    single = signal_scores(torch.tensor([[1.0], [1.0]]), torch.tensor([[1.0], [1.0]]))
    torch.testing.assert_close(single["margin"], torch.tensor([1.0, 1.0]))  # one answer: nothing to subtract


def pairwise_auroc(a, b) -> float:
    """P(an in-scope score > an out-of-scope one), ties counting half: the definition, pair by pair."""
    wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in itertools.product(a, b))
    return wins / (len(a) * len(b))


def test_auroc_by_hand():
    assert auroc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert auroc([0.1, 0.2], [0.9, 0.8, 0.7]) == 0.0
    assert auroc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5
    # pairs: 0.9 beats both; each 0.5 ties the 0.5 (a half) and beats 0.1: 5 of 6
    assert auroc([0.9, 0.5, 0.5], [0.5, 0.1]) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_is_the_pairwise_count_with_ties_and_any_order(seed):
    rng = random.Random(seed)
    a = [rng.randint(0, 6) / 6 for _ in range(rng.randint(1, 12))]  # few values: many ties, within and across
    b = [rng.randint(0, 6) / 6 for _ in range(rng.randint(1, 12))]
    assert auroc(a, b) == pytest.approx(pairwise_auroc(a, b))
    assert auroc(a[::-1], rng.sample(b, len(b))) == pytest.approx(auroc(a, b))
    assert auroc(b, a) == pytest.approx(1 - auroc(a, b))  # swapping the classes mirrors it


def test_auroc_refuses_an_empty_side():
    with pytest.raises(ValueError, match="in-scope and out-of-scope"):
        auroc([0.5], [])
    with pytest.raises(ValueError, match="in-scope and out-of-scope"):
        auroc([], [0.5])


def test_threshold_keeps_the_share_asked_for():
    scores = [float(x) for x in range(10)]
    shuffled = random.Random(0).sample(scores, 10)
    assert threshold_at_retention(shuffled, 0.9) == 1.0  # the lowest score flagged, 9 of 10 kept
    assert threshold_at_retention(shuffled, 0.8) == 2.0
    assert threshold_at_retention(shuffled, 1.0) == 0.0  # everything kept
    assert threshold_at_retention([float(x) for x in range(100)], 0.95) == 5.0
    assert threshold_at_retention([float(x) for x in range(20)], 0.95) == 1.0
    for retention in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        for n in (1, 5, 7, 10, 20, 99, 100, 3000):
            inside = [i / n for i in range(n)]
            kept = 1 - recall_at(inside, threshold_at_retention(inside, retention))
            assert kept >= retention - 1e-12  # never keeps fewer than asked ...
            assert round(kept * n) == n - math.floor(round((1 - retention) * n, 6))  # ... nor more than needed


def test_tied_scores_at_the_threshold_are_all_kept():
    inside = [0.2, 0.5, 0.5, 0.5, 0.9]
    threshold = threshold_at_retention(inside, 0.6)  # two of five may go: the lowest, then one of the tied 0.5s
    assert threshold == 0.5
    assert recall_at(inside, threshold) == 0.2  # ties are not split: only 0.2 is flagged


@pytest.mark.parametrize("scores, retention", [([], 0.9), ([0.5], 0.0), ([0.5], 1.5), ([0.5], -0.1)])
def test_threshold_refuses_no_scores_or_a_share_outside_zero_to_one(scores, retention):
    with pytest.raises(ValueError, match=r"needs in-scope scores and 0 < retention <= 1; got \d+ scores, retention"):
        threshold_at_retention(scores, retention)


def test_threshold_keeps_95_percent_by_default():
    scores = [float(x) for x in range(100)]
    assert threshold_at_retention(scores) == threshold_at_retention(scores, 0.95) == 5.0


def test_recall_counts_scores_strictly_below_the_threshold():
    assert recall_at([0.1, 0.5, 0.7, 0.2], 0.5) == 0.5  # 0.1 and 0.2; a score at the threshold is kept
    assert recall_at([0.9, 0.8], 0.5) == 0.0
    assert recall_at([0.1], 0.5) == 1.0
    assert recall_at([], 0.5) == 0.0
