"""Faithfulness of word attributions by deletion: remove the k top-attributed words of a text and watch the explained
probability (p(Î|x), or p(ŷ|x,Î)) fall, against removing k random words. The figure is the area between the random
curve and a method's curve (mean over k = 1..K of p after random deletion minus p after attributed deletion): larger
is more faithful, about 0 is no better than random."""
from __future__ import annotations

import random
from dataclasses import dataclass

from .attribution import Prompt, delete, prompts, target_probs, word_scores

RANDOM = "random"


@dataclass
class DeletionCurve:
    """Mean p(target) after deleting the top-k words of ``method`` (or k random words), k = 0..K, over ``n`` texts."""

    target: str  # "step" or "answer"
    method: str
    probs: list[float]
    n: int

    def drop(self, k: int) -> float:
        """Mean fall of p(target) when k words are deleted."""
        return self.probs[0] - self.probs[k]


def area_between(curve: DeletionCurve, random_curve: DeletionCurve) -> float:
    """Mean over k >= 1 of (random - attributed): how much faster the method's deletions lower the probability."""
    ks = range(1, len(curve.probs))
    return sum(random_curve.probs[k] - curve.probs[k] for k in ks) / max(1, len(ks))


def _ranked(p: Prompt, scores: list[float]) -> list[int]:
    """The prompt's deletable words, highest score first (ties: earlier word first)."""
    words = sorted(set(p.word))
    return sorted(words, key=lambda w: (-scores[w], w))


def _shuffled(p: Prompt, seed: int, index: int) -> list[int]:
    """The prompt's deletable words in a random order fixed by the seed and the input's index."""
    words = sorted(set(p.word))
    random.Random(f"{seed}:{index}").shuffle(words)
    return words


def deletion_sums(pipe, inputs: list, methods: list[str], k_max: int = 5, seed: int = 0,
                  offset: int = 0) -> tuple[dict[tuple[str, str], list[float]], dict[str, int]]:
    """Sums over ``inputs`` of p(target) after deleting 0..k_max words, per (target, method or "random"), and the
    number of texts summed per target. Deleting k words where a text has fewer deletes them all. ``offset``: the
    first input's index in the whole run (it seeds the random order)."""
    fields = [pipe.fields(x) for x in inputs]
    _, _, jobs = prompts(pipe, fields, [None] * len(fields))
    n_words = [max(p.word, default=-1) + 1 for p in jobs.get("step", jobs.get("direct"))]
    sums: dict = {}
    counts: dict = {}
    for target, plist in jobs.items():
        if target == "direct":
            continue
        plist_idx = [(i, p) for i, p in enumerate(plist) if p.word]  # texts with a word left to delete
        orders = {m: [_ranked(p, s) for (_, p), s in zip(plist_idx, word_scores(
            pipe.model, [p for _, p in plist_idx], m, [n_words[i] for i, _ in plist_idx]))] for m in methods}
        orders[RANDOM] = [_shuffled(p, seed, offset + i) for i, p in plist_idx]
        encs, targets, keys = [], [], []
        for m, rows in orders.items():
            for (_, p), order in zip(plist_idx, rows):
                for k in range(k_max + 1):
                    encs.append(delete(p.enc, p.positions(order[:k])))
                    targets.append(p.target)
                    keys.append((m, k))
        probs = target_probs(pipe.model, encs, plist[0].kind, targets).tolist()
        for (m, k), value in zip(keys, probs):
            sums.setdefault((target, m), [0.0] * (k_max + 1))[k] += value
        counts[target] = len(plist_idx)
    return sums, counts


def deletion_curves(pipe, inputs: list, methods: list[str], k_max: int = 5, seed: int = 0,
                    batch_size: int = 32, progress=None) -> list[DeletionCurve]:
    """Deletion curves of every method and of random deletion, for Î in Step I and the answer under Î in Step II."""
    total: dict = {}
    counts: dict = {}
    for start in range(0, len(inputs), batch_size):
        part, n = deletion_sums(pipe, inputs[start : start + batch_size], methods, k_max, seed, start)
        for key, values in part.items():
            total[key] = [a + b for a, b in zip(total.get(key, [0.0] * len(values)), values)]
        for target, count in n.items():
            counts[target] = counts.get(target, 0) + count
        if progress:
            progress(len(inputs[start : start + batch_size]))
    return [DeletionCurve(target, method, [s / max(1, counts[target]) for s in sums], counts[target])
            for (target, method), sums in total.items()]
