"""Metrics of docs/METHOD.md: accuracy and F1, TACRED-style relation F1, step accuracy, coverage, step sensitivity."""
from __future__ import annotations

from typing import Sequence

import numpy as np

NO_RELATION = "no_relation"


def classification_scores(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> dict[str, float]:
    """Accuracy, micro-F1 and macro-F1 (over labels present in gold or predictions)."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    acc = float((gold == pred).mean()) if len(gold) else 0.0
    f1s = []
    for label in range(num_labels):
        tp = int(((pred == label) & (gold == label)).sum())
        fp = int(((pred == label) & (gold != label)).sum())
        fn = int(((pred != label) & (gold == label)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": acc, "micro_f1": acc, "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def relation_scores(gold: Sequence[str], pred: Sequence[str], negative: str = NO_RELATION) -> dict[str, float]:
    """TACRED-style micro precision, recall and F1 over relations other than ``no_relation``."""
    correct = sum(1 for g, p in zip(gold, pred) if g == p and g != negative)
    scores = _prf(correct, sum(1 for p in pred if p != negative), sum(1 for g in gold if g != negative))
    accuracy = sum(1 for g, p in zip(gold, pred) if g == p) / len(gold) if gold else 0.0
    return scores | {"accuracy": accuracy}


def _prf(correct: int, guessed: int, actual: int) -> dict[str, float]:
    precision = correct / guessed if guessed else 0.0
    recall = correct / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def relation_scores_per_label(gold: Sequence[str], pred: Sequence[str], negative: str = NO_RELATION) -> dict[str, dict]:
    """Precision, recall, F1 and gold count of each relation other than ``no_relation``: where the errors are."""
    out = {}
    for label in sorted((set(gold) | set(pred)) - {negative}):
        correct = sum(1 for g, p in zip(gold, pred) if g == p == label)
        actual = sum(1 for g in gold if g == label)
        out[label] = _prf(correct, sum(1 for p in pred if p == label), actual) | {"support": actual}
    return out


def accuracy_at_coverage(correct: Sequence[bool], confidence: Sequence[float], coverages=(1.0, 0.9, 0.8, 0.7, 0.5)) -> dict[str, float]:
    """Accuracy on the most confident fraction of inputs, abstaining on the rest (the reasoning monitor)."""
    correct, confidence = np.asarray(correct, dtype=float), np.asarray(confidence, dtype=float)
    order = np.argsort(-confidence, kind="stable")
    out = {}
    for c in coverages:
        k = max(1, int(round(c * len(order))))
        out[f"{c:.2f}"] = float(correct[order[:k]].mean()) if len(order) else 0.0
    return out


def coverage_curve(correct: Sequence[bool], confidence: Sequence[float], points: int = 20) -> list[tuple[float, float]]:
    """(coverage, accuracy) pairs for plotting accuracy against coverage."""
    cov = [i / points for i in range(1, points + 1)]
    acc = accuracy_at_coverage(correct, confidence, cov)
    return [(c, acc[f"{c:.2f}"]) for c in cov]


def step_sensitivity(answer_under_step_hat: Sequence[int], answer_under_other_step: Sequence[int]) -> float:
    """How often injecting another step (the runner-up) changes the answer: does the model use its step?"""
    a, b = np.asarray(answer_under_step_hat), np.asarray(answer_under_other_step)
    return float((a != b).mean()) if len(a) else 0.0


def inconsistency_rate(answers: Sequence[str], steps: Sequence[str], parent: dict[str, str]) -> float:
    """Share of answers whose parent in the hierarchy is not the predicted step."""
    pairs = [(a, s) for a, s in zip(answers, steps) if a in parent]
    return sum(1 for a, s in pairs if parent[a] != s) / len(pairs) if pairs else 0.0
