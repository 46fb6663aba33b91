"""CoTT's training objective: L = α L_I + L_y1 + L_y2 + λ L_cc (+ μ L_follow, the step-following term); α = 1 in the paper."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def counterfactual_contrastive_loss(
    z_x: torch.Tensor, z_gold: torch.Tensor, z_counterfactual: torch.Tensor, tau: float = 0.1, in_batch: bool = False
) -> torch.Tensor:
    """InfoNCE: (g(h_x), g(h_{x,I})) is the positive pair, (g(h_x), g(h_{x,I*})) the negative.

    With ``in_batch`` the other examples' Step II states are negatives too. Inputs are projected,
    not yet normalised, (N, D) tensors.
    """
    z_x, z_gold, z_cf = (F.normalize(z, dim=-1) for z in (z_x, z_gold, z_counterfactual))
    neg = (z_x * z_cf).sum(-1, keepdim=True)
    if in_batch:
        logits = torch.cat([z_x @ z_gold.T, neg], dim=1) / tau
        target = torch.arange(z_x.size(0), device=z_x.device)
    else:
        logits = torch.cat([(z_x * z_gold).sum(-1, keepdim=True), neg], dim=1) / tau
        target = torch.zeros(z_x.size(0), dtype=torch.long, device=z_x.device)
    return F.cross_entropy(logits, target)


@dataclass
class LossConfig:
    step_weight: float = 1.0  # α, the weight of L_I (1 is the paper's objective)
    step2: bool = True  # False: the "Step I only" ablation (no injected step at all)
    contrastive_weight: float = 1.0  # λ; 0 switches the counterfactual contrastive loss off
    tau: float = 0.1  # τ, the temperature of the contrastive loss
    in_batch_negatives: bool = False
    following_weight: float = 0.0  # μ; 0 switches the step-following term off
    following_form: str = "set"  # "set" or "distill": see step_following_loss


FOLLOWING_FORMS = ("set", "distill")


def step_following_loss(logits: torch.Tensor, allowed: torch.Tensor, direct: torch.Tensor | None = None,
                        form: str = "set") -> torch.Tensor:
    """Ask the answer under a counterfactual step I* to lie within A(I*), the answers the step allows.

    ``logits``: (N, Y) answer logits of the counterfactual Step II rows; ``allowed``: (N, Y) bool, A(I*).
    ``set``: −log Σ_{y∈A(I*)} p(y|x,I*), the mass inside the step. ``distill``: cross-entropy against the
    model's own direct p(y|x) (``direct`` logits, not back-propagated) renormalised over A(I*): the answer the
    text would get within that step, so the answer moves to the nearest answer of the injected step.
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    if form == "set":
        return -torch.logsumexp(log_p.masked_fill(~allowed, float("-inf")), dim=-1).mean()
    if form == "distill":
        target = F.softmax(direct.detach().float().masked_fill(~allowed, float("-inf")), dim=-1)
        return -(target * log_p.masked_fill(~allowed, 0.0)).sum(-1).mean()
    raise ValueError(f"following form must be one of {FOLLOWING_FORMS}, not {form!r}")


def cott_loss(model, batch: dict, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one training batch laid out as [Step I | Step II gold | Step II counterfactual] rows."""
    n = batch["answer"].size(0)
    contrastive = cfg.step2 and cfg.contrastive_weight > 0 and "step" in batch
    following = cfg.step2 and "counterfactual_allowed" in batch
    out = model(batch["input_ids"], batch["attention_mask"], batch["answer_pos"], batch["step_pos"], project=contrastive)
    logits = out["answer_logits"]
    parts = {"L_y1": F.cross_entropy(logits[:n], batch["answer"])}
    if "step_logits" in out:
        step_logits = out["step_logits"]  # rows of Step I only
        parts["L_I"] = cfg.step_weight * F.cross_entropy(step_logits.flatten(0, 1), batch["step"].flatten())
        if cfg.step2:
            parts["L_y2"] = F.cross_entropy(logits[n : 2 * n], batch["answer"])
        if contrastive:
            z = out["answer_projection"]
            parts["L_cc"] = cfg.contrastive_weight * counterfactual_contrastive_loss(
                z[:n], z[n : 2 * n], z[2 * n : 3 * n], cfg.tau, cfg.in_batch_negatives
            )
        if following:
            parts["L_follow"] = cfg.following_weight * step_following_loss(
                logits[2 * n : 3 * n], batch["counterfactual_allowed"], logits[:n], cfg.following_form)
    loss = sum(parts.values())
    return loss, {k: float(v.detach()) for k, v in parts.items()}
