"""Training batches: Step I, Step II with the gold step and Step II with a counterfactual step, as one batch."""
from __future__ import annotations

import random
from typing import Sequence

import torch

from .config import MAX_LENGTH
from .data import Example
from .steps import join


def prompt_lengths(model, examples: Sequence[Example], max_length: int) -> list[int]:
    """Token count of each example's Step I prompt (masks in ``[C]``) as encoded under ``max_length``."""
    return [len(model.template.encode(model.tokenizer, e.fields, None, max_length).input_ids) for e in examples]


def by_prompt_length(model, examples: Sequence[Example], max_length: int) -> list[Example]:
    """``examples`` shortest prompt first (stable): batches of similar lengths pad less, for order-free scoring."""
    lengths = prompt_lengths(model, examples, max_length)
    return [e for _, e in sorted(zip(lengths, examples), key=lambda pair: pair[0])]


class TrainingBatcher:
    """Turns examples into one tensor batch with rows [Step I | Step II gold | Step II counterfactual].

    Step II rows are left out for single-step models and for the "Step I only" ablation; the
    counterfactual rows are left out when the contrastive loss is off. The counterfactual step I* is
    drawn uniformly from the other known steps (``sampling="uniform"``) or from the model's own p(I|x)
    without the gold step (``sampling="model"``: the steps it confuses, read in a gradient-free Step I pass).
    With ``step_answers`` (the step-answer table: step label -> answers) the batch also holds
    ``counterfactual_allowed``, the answers each counterfactual step allows (for the step-following term).
    """

    SAMPLING = ("uniform", "model")

    def __init__(self, model, max_length: int = MAX_LENGTH, step2: bool = True, counterfactual: bool = True,
                 sampling: str = "uniform", step_answers: dict[str, list[str]] | None = None):
        if sampling not in self.SAMPLING:
            raise ValueError(f"counterfactual sampling must be one of {self.SAMPLING}, not {sampling!r}")
        self.model = model
        self.max_length = max_length
        self.step2 = step2 and model.num_step_slots > 0
        self.counterfactual = counterfactual and self.step2
        self.sampling = sampling
        self.steps = model.known_steps()
        if self.counterfactual and len(self.steps) < 2:
            raise ValueError("counterfactual steps need at least two known steps")
        self.allowed = None
        if step_answers is not None and self.counterfactual:
            labels = model.answer.labels
            self.allowed = torch.zeros(len(self.steps), len(labels), dtype=torch.bool)
            for i, step in enumerate(self.steps):
                for a in step_answers.get(join(step), ()):
                    self.allowed[i, labels.index(a)] = True

    def _counterfactuals(self, examples, first, rng: random.Random, before: Sequence[Example] = ()) -> list[tuple[str, ...]]:
        """One counterfactual step I* != gold per example; the draws of ``before`` are made first and dropped."""
        if self.sampling == "uniform":
            drawn = []
            for ex in [*before, *examples]:  # rejection sampling: the random stream of earlier runs, so seeds reproduce
                other = tuple(ex.step)
                while other == tuple(ex.step):
                    other = self.steps[rng.randrange(len(self.steps))]
                drawn.append(other)
            return drawn[len(before):]
        for _ in before:  # rng.choices below takes one rng.random() per example, whatever the weights
            rng.random()
        gold = [self.steps.index(tuple(ex.step)) for ex in examples]
        others = [[j for j in range(len(self.steps)) if j != g] for g in gold]
        with torch.no_grad():
            out = self.model(**self.model.collate(first))
            p = self.model.step_distribution(out["step_logits"].float()).cpu()
        return [self.steps[rng.choices(pool, weights=[float(p[i, j]) + 1e-12 for j in pool])[0]]
                for i, pool in enumerate(others)]

    def __call__(self, examples: Sequence[Example], rng: random.Random,
                 before: Sequence[Example] = ()) -> dict[str, torch.Tensor]:
        """The batch of ``examples``. ``before``: the examples that precede them in the iteration's whole batch when
        these are one process's share of it (data-parallel training); the counterfactual draws from ``rng`` are then
        those the whole batch would give these examples, whatever the number of processes."""
        m, tpl, tok = self.model, self.model.template, self.model.tokenizer
        first, gold, cf, answers, steps, text_ids = [], [], [], [], [], []
        for ex in examples:
            ids = tpl.text_ids(tok, ex.fields[tpl.main])
            text_ids.append(ids)
            first.append(tpl.encode(tok, ex.fields, None, self.max_length, ids))
            answers.append(m.answer.index(ex.label))
            if not m.num_step_slots:
                continue
            steps.append([m.step.index(s) for s in ex.step])
            if self.step2:
                gold.append(tpl.encode(tok, ex.fields, m.step_phrase(ex.step), self.max_length, ids))
        others = self._counterfactuals(examples, first, rng, before) if self.counterfactual else []
        for ex, ids, other in zip(examples, text_ids, others):
            cf.append(tpl.encode(tok, ex.fields, m.step_phrase(other), self.max_length, ids))
        batch = m.collate(first + gold + cf)
        device = batch["input_ids"].device
        batch["answer"] = torch.tensor(answers, dtype=torch.long, device=device)
        if steps:
            batch["step"] = torch.tensor(steps, dtype=torch.long, device=device)
        if self.allowed is not None:
            batch["counterfactual_allowed"] = self.allowed[[self.steps.index(tuple(s)) for s in others]].to(device)
        return batch
