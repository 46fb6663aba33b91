"""Counterfactual step experiments: inject steps into many inputs and measure whether the answer follows them.

A *policy* chooses the steps injected into each input: ``fixed`` (one step for every input), ``given``
(one step, or a list of steps, per input), ``gold`` (the input's gold step: the oracle), ``runner_up``
(the model's second most probable step), ``random_wrong`` (a seeded random known step other than Î and
the gold step) or ``all`` (every known step). An answer *follows* a step
when the step-answer table (``step_answers``: the answers the training data pairs with each step;
for relations ``no_relation`` always) lists it.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import torch

from .batching import by_prompt_length
from . import monitor
from .inference import answer_given_steps, reason
from .steps import StepSpace, final_distribution, join

POLICIES = ("fixed", "given", "gold", "runner_up", "random_wrong", "all")
Step = tuple  # a reasoning step: one label (or free-text phrase) per [C] slot


def step_answer_table(examples, kind: str, negative: str = "no_relation") -> dict[str, list[str]]:
    """Step label ("a | b" for several slots) -> the answers seen with it in ``examples``, sorted.

    For relations the negative answer is consistent with every step: any type pair may be unrelated.
    """
    table: dict[str, set] = {}
    for e in examples:
        if e.step and e.label is not None:
            table.setdefault(join(e.step), set()).add(e.label)
    if kind == "relation":
        for answers in table.values():
            answers.add(negative)
    return {s: sorted(a) for s, a in sorted(table.items())}


@dataclass
class Injection:
    """The answer under one injected step."""

    step: str  # label form ("a | b"), or the free text as given
    known: bool  # a known step (else free text, whose consistency is unknown)
    answer: str  # argmax of p(y|x,step) (restricted to the step's answers when constrained)
    answer_prob: float
    changed: bool  # differs from the model's own final answer
    follows: bool | None  # the answer is one the step-answer table pairs with the step; None if unknown
    correct: bool | None = None


@dataclass
class CounterfactualRecord:
    """One input: the model's own reasoning and the answers under each injected step."""

    index: int
    text: str
    step: str  # Î
    step_prob: float  # p(Î|x)
    answer: str  # the model's final answer, in the checkpoint's answer mode
    answer_step: str  # argmax p(y|x,Î)
    injections: list[Injection] = field(default_factory=list)
    gold_step: str | None = None
    gold_label: str | None = None
    correct: bool | None = None
    scope_score: float | None = None  # the checkpoint's fitted out-of-scope signal, if it has one
    out_of_scope: bool | None = None  # scope_score below its fitted threshold
    truncated: bool = False  # max_length cut the text (of its own Step I or Step II prompt)

    def to_dict(self) -> dict:
        return asdict(self)


def _pick_steps(policy: str, p_steps: torch.Tensor, known: list, gold_step, given, rng: random.Random) -> list:
    """The steps (tuples, known or free text) injected into one input under ``policy``."""
    hat = int(p_steps.argmax())
    if policy in ("fixed", "given"):
        return [tuple(s) for s in given]
    if policy == "gold":
        return [tuple(gold_step)] if gold_step else []
    if policy == "runner_up":
        return [known[int(p_steps.topk(2).indices[1])]] if len(known) > 1 else []
    if policy == "random_wrong":  # wrong for the model (not Î) and, when it is known, for the data (not gold)
        avoid = {hat} | ({known.index(tuple(gold_step))} if gold_step and tuple(gold_step) in known else set())
        pool = [j for j in range(len(known)) if j not in avoid]
        return [known[rng.choice(pool)]] if pool else []
    return list(known)  # "all"


def run(
    model,
    inputs: Sequence[dict],
    policy: str,
    *,
    steps: Sequence[Sequence[Sequence[str]]] | None = None,
    gold_steps: Sequence[Sequence[str] | None] | None = None,
    gold_labels: Sequence[str | None] | None = None,
    step_answers: dict[str, list[str]] | None = None,
    answer_mode: str,
    constrained: bool = False,
    seed: int = 0,
    max_length: int,
    batch_size: int = 64,
    texts: Sequence[str] | None = None,
    scope_fit: dict | None = None,
) -> list[CounterfactualRecord]:
    """Counterfactual records for ``inputs`` (text fields), in input order; the model's own answer is in
    ``answer_mode``, its prompts are cut at ``max_length`` (both the checkpoint's).

    ``scope_fit``: the checkpoint's out-of-scope fit (``{"signal", "threshold"}``); each record then says whether
    the input looks out of scope, as ``CoTTPipeline`` predictions do.

    ``steps[i]`` lists the steps (one label or phrase per slot) to inject into input ``i`` for the
    ``fixed``/``given`` policies. Forward passes: one Step I and one Step II (Î) pass per batch of
    inputs, plus one Step II encoding per injected step that is not Î.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    space = StepSpace(model)
    known = space.labels
    if not known:
        raise ValueError("this model has no intermediate step to inject")
    if policy in ("fixed", "given") and (steps is None or len(steps) != len(inputs)):
        raise ValueError(f"the {policy!r} policy needs steps for every input")
    if policy == "gold" and (gold_steps is None or not any(gold_steps)):
        raise ValueError("the 'gold' policy needs the inputs' gold steps")
    labels = model.answer.labels
    phrase_of = dict(zip(known, space.words))
    rng = random.Random(seed)
    order = _length_order(model, inputs, max_length)
    records: list[CounterfactualRecord | None] = [None] * len(inputs)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        fields = [inputs[i] for i in idx]
        r = reason(model, fields, None, max_length)
        final = final_distribution(r, answer_mode)
        scores = None
        if scope_fit:
            scores = monitor.signal_scores(r["p_rectified"], r["p_answer"], r["p_step_hat"])[scope_fit["signal"]]
        chosen, pairs = [], []
        for k, i in enumerate(idx):
            gold = gold_steps[i] if gold_steps is not None else None
            picks = _pick_steps(policy, r["p_steps"][k], known, gold, steps[i] if steps is not None else None, rng)
            # a known step in any spelling becomes its label; free text stays as it is
            picks = [tuple(s) if (j := space.find(s)) is None else known[j] for s in picks]
            chosen.append(picks)
            hat = known[int(r["step_hat"][k])]
            pairs += [(fields[k], list(phrase_of.get(s, s))) for s in picks if s != hat]
        probs = iter(answer_given_steps(model, pairs, max_length, batch_size) if pairs else [])
        for k, i in enumerate(idx):
            hat = known[int(r["step_hat"][k])]
            answer = labels[int(final[k].argmax())]
            rec = CounterfactualRecord(
                index=i, text=(texts[i] if texts is not None else fields[k].get("text", "")),
                step=join(hat), step_prob=float(r["p_step_hat"][k]), answer=answer,
                answer_step=labels[int(r["p_answer_step"][k].argmax())], truncated=r["truncated"][k],
            )
            if scores is not None:
                rec.scope_score = float(scores[k])
                rec.out_of_scope = rec.scope_score < scope_fit["threshold"]
            if gold_steps is not None and gold_steps[i]:
                rec.gold_step = join(gold_steps[i])
            if gold_labels is not None and gold_labels[i] is not None:
                rec.gold_label = gold_labels[i]
                rec.correct = answer == gold_labels[i]
            for s in chosen[k]:
                p = r["p_answer_step"][k] if s == hat else next(probs)
                rec.injections.append(_injection(s, s in phrase_of, p, labels, answer, step_answers, constrained,
                                                 rec.gold_label))
            records[i] = rec
    return records


def _injection(step: Step, is_known: bool, p: torch.Tensor, labels, answer, step_answers, constrained, gold) -> Injection:
    name = join(step)
    allowed = (step_answers or {}).get(name) if is_known else None
    if constrained and allowed:
        p = constrain(p, [labels.index(a) for a in allowed if a in labels])
    j = int(p.argmax())
    return Injection(step=name, known=is_known, answer=labels[j], answer_prob=float(p[j]), changed=labels[j] != answer,
                     follows=None if allowed is None else labels[j] in allowed,
                     correct=None if gold is None else labels[j] == gold)


def constrain(p: torch.Tensor, allowed: Sequence[int]) -> torch.Tensor:
    """``p`` renormalised over the ``allowed`` answers (the answers consistent with the injected step)."""
    mask = torch.zeros_like(p, dtype=torch.bool)
    mask[..., list(allowed)] = True
    kept = p.masked_fill(~mask, 0.0)
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)


def _length_order(model, inputs, max_length) -> list[int]:
    """Input indices, shortest prompt first: batches of similar lengths pad less."""
    from .data import Example

    wrapped = [Example(f, None, None, {"i": i}) for i, f in enumerate(inputs)]
    return [e.meta["i"] for e in by_prompt_length(model, wrapped, max_length)]


def summarise(records: Iterable[CounterfactualRecord]) -> dict:
    """Flip rate, step-following rate and accuracy under the injected steps, over all injections.

    Rates are fractions of the injections where they are defined (following: known steps only;
    accuracy: inputs with a gold label), with the counts they are over.
    """
    n_inputs = n_inj = flips = follows_n = follows = correct_n = correct = base_n = base = 0
    per_step: dict[str, list[int]] = {}
    for rec in records:
        n_inputs += 1
        if rec.correct is not None:
            base_n, base = base_n + 1, base + rec.correct
        for inj in rec.injections:
            n_inj += 1
            flips += inj.changed
            row = per_step.setdefault(inj.step, [0, 0, 0, 0])  # injections, flips, follow-defined, follows
            row[0] += 1
            row[1] += inj.changed
            if inj.follows is not None:
                follows_n, follows = follows_n + 1, follows + inj.follows
                row[2] += 1
                row[3] += inj.follows
            if inj.correct is not None:
                correct_n, correct = correct_n + 1, correct + inj.correct
    rate = lambda a, b: a / b if b else None  # noqa: E731
    return {
        "inputs": n_inputs,
        "injections": n_inj,
        "flip_rate": rate(flips, n_inj),
        "following_rate": rate(follows, follows_n),
        "following_over": follows_n,
        "accuracy_under_injected": rate(correct, correct_n),
        "accuracy_over": correct_n,
        "accuracy_model": rate(base, base_n),
        "per_step": {s: {"injections": r[0], "flip_rate": rate(r[1], r[0]), "following_rate": rate(r[3], r[2])}
                     for s, r in sorted(per_step.items())},
    }

