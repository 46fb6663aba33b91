"""The reasoning monitor's scores: how in-scope an input looks, and how well a score separates out-of-scope inputs.

Every signal is "higher = more like the training data": p(Î|x), the max of p̃(y|x) or of p(y|x), the
margin between p̃'s two best answers, and minus the entropy of p̃. Single-step models (baselines)
have only the answer signals.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

SIGNALS = ("p_step", "max_rectified", "max_direct", "margin", "neg_entropy")


def signal_scores(p_rectified: torch.Tensor, p_answer: torch.Tensor, p_step_hat: torch.Tensor | None = None) -> dict:
    """Signal name -> (N,) scores, from the final distribution p̃, the direct p(y|x) and p(Î|x) (if any)."""
    top2 = p_rectified.topk(min(2, p_rectified.size(-1)), dim=-1).values
    out = {
        "max_rectified": top2[:, 0],
        "max_direct": p_answer.max(-1).values,
        "margin": top2[:, 0] - (top2[:, 1] if top2.size(1) > 1 else 0),
        "neg_entropy": (p_rectified * p_rectified.clamp_min(1e-12).log()).sum(-1),
    }
    if p_step_hat is not None:
        out["p_step"] = p_step_hat
    return {k: out[k] for k in SIGNALS if k in out}


def auroc(in_scope: Sequence[float], out_of_scope: Sequence[float]) -> float:
    """Area under the ROC curve of telling in-scope (higher scores) from out-of-scope inputs; ties count half."""
    a, b = np.asarray(in_scope, dtype=float), np.asarray(out_of_scope, dtype=float)
    if not len(a) or not len(b):
        raise ValueError(f"AUROC needs in-scope and out-of-scope scores; got {len(a)} and {len(b)}")
    ranks = _average_ranks(np.concatenate([a, b]))
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # tied values share their mean rank
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def threshold_at_retention(in_scope: Sequence[float], retention: float = 0.95) -> float:
    """The score at or above which ``retention`` of the in-scope inputs lie (they are kept, the rest flagged): the
    lowest floor((1 - retention) * N) scores fall below it (fewer where scores tie at it)."""
    a = np.sort(np.asarray(in_scope, dtype=float))
    if not len(a) or not 0 < retention <= 1:
        raise ValueError(f"needs in-scope scores and 0 < retention <= 1; got {len(a)} scores, retention {retention}")
    # 1e-9: (1 - 0.9) * 10 is 0.9999999999999998 in floating point, which would flag none of 10 instead of one
    return float(a[int(np.floor((1 - retention) * len(a) + 1e-9))])


def recall_at(out_of_scope: Sequence[float], threshold: float) -> float:
    """Share of out-of-scope inputs flagged (scored below ``threshold``)."""
    b = np.asarray(out_of_scope, dtype=float)
    return float((b < threshold).mean()) if len(b) else 0.0
