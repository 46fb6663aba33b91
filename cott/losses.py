"""CoTT's training objective: L = L_I + L_y1 + L_y2 + λ L_cc."""
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
    step2: bool = True  # False: the "Step I only" ablation (no injected step at all)
    contrastive_weight: float = 1.0  # λ; 0 switches the counterfactual contrastive loss off
    tau: float = 0.1  # τ, the temperature of the contrastive loss
    in_batch_negatives: bool = False


def cott_loss(model, batch: dict, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one training batch laid out as [Step I | Step II gold | Step II counterfactual] rows."""
    n = batch["answer"].size(0)
    contrastive = cfg.step2 and cfg.contrastive_weight > 0 and "step" in batch
    out = model(batch["input_ids"], batch["attention_mask"], batch["answer_pos"], batch["step_pos"], project=contrastive)
    logits = out["answer_logits"]
    parts = {"L_y1": F.cross_entropy(logits[:n], batch["answer"])}
    if "step_logits" in out:
        step_logits = out["step_logits"]  # rows of Step I only
        parts["L_I"] = F.cross_entropy(step_logits.flatten(0, 1), batch["step"].flatten())
        if cfg.step2:
            parts["L_y2"] = F.cross_entropy(logits[n : 2 * n], batch["answer"])
        if contrastive:
            z = out["answer_projection"]
            parts["L_cc"] = cfg.contrastive_weight * counterfactual_contrastive_loss(
                z[:n], z[n : 2 * n], z[2 * n : 3 * n], cfg.tau, cfg.in_batch_negatives
            )
    loss = sum(parts.values())
    return loss, {k: float(v.detach()) for k, v in parts.items()}
