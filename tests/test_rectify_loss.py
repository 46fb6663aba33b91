"""Rectification against hand-computed numbers; the counterfactual contrastive loss."""
import torch

from cott.losses import counterfactual_contrastive_loss
from cott.rectify import rectify, topk_marginal


def test_rectify_hand_computed():
    p_hat = torch.tensor([0.8])
    p_step = torch.tensor([[0.9, 0.1]])
    p_direct = torch.tensor([[0.3, 0.7]])
    # 0.8 * 0.9 + 0.2 * 0.3 = 0.78 ; 0.8 * 0.1 + 0.2 * 0.7 = 0.22
    assert torch.allclose(rectify(p_hat, p_step, p_direct), torch.tensor([[0.78, 0.22]]))


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


def test_contrastive_loss_lower_for_matching_pairs():
    torch.manual_seed(0)
    z_x = torch.randn(8, 16)
    close = z_x + 0.05 * torch.randn(8, 16)
    far = torch.randn(8, 16)
    matching = counterfactual_contrastive_loss(z_x, close, far, tau=0.1)
    mismatched = counterfactual_contrastive_loss(z_x, far, close, tau=0.1)
    assert matching < mismatched
    assert counterfactual_contrastive_loss(z_x, close, far, in_batch=True) < counterfactual_contrastive_loss(z_x, far, close, in_batch=True)
