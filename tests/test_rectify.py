"""Probability rectification and the top-k marginal against hand-computed numbers, one input and several."""
import torch

from cott.rectify import rectify, topk_marginal


def test_rectify_hand_computed():
    p_hat = torch.tensor([0.8])
    p_step = torch.tensor([[0.9, 0.1]])
    p_direct = torch.tensor([[0.3, 0.7]])
    # 0.8 * 0.9 + 0.2 * 0.3 = 0.78 ; 0.8 * 0.1 + 0.2 * 0.7 = 0.22
    assert torch.allclose(rectify(p_hat, p_step, p_direct), torch.tensor([[0.78, 0.22]]))


def test_rectify_weighs_each_input_by_its_own_step_probability():
    p_hat = torch.tensor([0.8, 0.25])
    p_step = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.2, 0.6]])
    p_direct = torch.tensor([[0.3, 0.7, 0.0], [0.6, 0.4, 0.0]])
    want = torch.tensor([[0.8 * 0.9 + 0.2 * 0.3, 0.8 * 0.1 + 0.2 * 0.7, 0.0],
                         [0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.2 + 0.75 * 0.4, 0.25 * 0.6]])
    assert torch.allclose(rectify(p_hat, p_step, p_direct), want)


def test_topk_marginal_generalises_rectify_and_is_exact_over_all_steps():
    torch.manual_seed(0)
    p_steps = torch.tensor([[0.6, 0.3, 0.1]])
    p_given = torch.softmax(torch.randn(1, 3, 4), -1)
    p_direct = torch.softmax(torch.randn(1, 4), -1)
    assert torch.allclose(topk_marginal(p_steps[:, :1], p_given[:, :1], p_direct), rectify(p_steps[:, 0], p_given[:, 0], p_direct))
    exact = (p_steps[..., None] * p_given).sum(1)
    assert torch.allclose(topk_marginal(p_steps, p_given, p_direct), exact)
    # hand-computed k=2: 0.6 a + 0.3 b + 0.1 direct
    k2 = 0.6 * p_given[:, 0] + 0.3 * p_given[:, 1] + 0.1 * p_direct
    assert torch.allclose(topk_marginal(p_steps[:, :2], p_given[:, :2], p_direct), k2)


def test_topk_marginal_of_a_batch_hand_computed():
    """Two inputs, two steps each, three answers, every number different: a transposed layout cannot pass."""
    p_steps = torch.tensor([[0.5, 0.3], [0.7, 0.1]])
    p_given = torch.tensor([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]],
                            [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]])  # (inputs, steps, answers)
    p_direct = torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]])
    want = torch.tensor([
        [0.5 * 0.6 + 0.3 * 0.2 + 0.2 * 0.4, 0.5 * 0.3 + 0.3 * 0.2 + 0.2 * 0.4, 0.5 * 0.1 + 0.3 * 0.6 + 0.2 * 0.2],
        [0.7 * 0.1 + 0.1 * 0.3 + 0.2 * 0.1, 0.7 * 0.8 + 0.1 * 0.3 + 0.2 * 0.1, 0.7 * 0.1 + 0.1 * 0.4 + 0.2 * 0.8],
    ])
    got = topk_marginal(p_steps, p_given, p_direct)
    assert torch.allclose(got, want) and torch.allclose(got.sum(-1), torch.ones(2))


def test_topk_marginal_never_weighs_the_direct_answer_negatively():
    """Steps whose probabilities sum past 1 (rounding) leave no mass to the direct answer, not a negative one."""
    p_steps = torch.tensor([[0.7, 0.4]])
    p_given = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    p_direct = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(topk_marginal(p_steps, p_given, p_direct), torch.tensor([[0.7, 0.4]]))
