"""Probability rectification: combine the direct answer and the answer given the generated step."""
from __future__ import annotations

import torch


def rectify(p_step_hat: torch.Tensor, p_answer_given_step: torch.Tensor, p_answer: torch.Tensor) -> torch.Tensor:
    """The paper's form: p~(y|x) = p(Î|x) p(y|x,Î) + (1 - p(Î|x)) p(y|x).

    Shapes: (N,), (N, L), (N, L) -> (N, L).
    """
    w = p_step_hat.unsqueeze(-1)
    return w * p_answer_given_step + (1 - w) * p_answer


def topk_marginal(p_steps: torch.Tensor, p_answer_given_steps: torch.Tensor, p_answer: torch.Tensor) -> torch.Tensor:
    """Exact marginal over the top-k steps, the remaining mass answered directly.

    sum_{I in top-k} p(I|x) p(y|x,I) + (1 - sum_{I in top-k} p(I|x)) p(y|x). With k = 1 this is
    ``rectify``; with every step it is the exact marginal. Shapes: (N, k), (N, k, L), (N, L) -> (N, L).
    """
    mass = p_steps.sum(-1, keepdim=True).clamp(max=1.0)
    return (p_steps.unsqueeze(-1) * p_answer_given_steps).sum(1) + (1 - mass) * p_answer
