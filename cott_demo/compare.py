"""Two models of one task side by side (pure Python, no Gradio): the same text under the same edited step, and one
Experiment file run on both with their flip and step-following rates together."""
from __future__ import annotations

import functools
from typing import Callable

from . import experiment as exp
from .inputs import InputError
from .render import answer_under_step, esc, pct
from .serving import Model, usable

COMPARE_POLICIES = [(text, value) for text, value in exp.POLICY_CHOICES if value in ("random_wrong", "runner_up", "fixed")]
RATE_COLUMNS = ["model", "rows", "injections", "answer changed", "answer follows the step", "accuracy (model)",
                "accuracy under the injected step"]


def pair(models: dict[str, Model], first, second) -> tuple[Model, Model]:
    """Two distinct loaded models of the same task (same steps and answers), or an InputError saying why not."""
    a, b = usable(models, first), usable(models, second)
    if a.name == b.name:
        raise InputError("Pick two different models to compare.")
    if not (a.pipe.has_steps and b.pipe.has_steps):
        raise InputError("Both models need an intermediate step to compare their answers under a step.")
    if a.pipe.steps != b.pipe.steps or a.pipe.labels != b.pipe.labels:
        raise InputError(f"{a.name!r} and {b.name!r} are models of different tasks (their steps or answers differ); "
                         "pick two models of the same task.")
    return a, b


def same_task(models: dict[str, Model]) -> tuple[str | None, str | None]:
    """The first two loaded models that share a task (the default pair), else (None, None)."""
    loaded = [m for m in models.values() if m.pipe is not None and m.pipe.has_steps]
    for i, a in enumerate(loaded):
        for b in loaded[i + 1:]:
            if a.pipe.steps == b.pipe.steps and a.pipe.labels == b.pipe.labels:
                return a.name, b.name
    return None, None


def follows(pipe, step: str, answer: str) -> bool | None:
    """Does ``answer`` lie within the answers the step allows (the checkpoint's step-answer table)? None: unknown."""
    allowed = (pipe.step_answers or {}).get(step)
    return None if allowed is None else answer in allowed


def side_by_side(named: list[tuple[str, object, object, bool | None]]) -> str:
    """Markdown: per model (name, its own prediction, the prediction under the edited step, follows), one column."""
    head = "| | " + " | ".join(f"**{esc(name)}**" for name, *_ in named) + " |"
    rows = [head, "|---" * (len(named) + 1) + "|"]

    def row(title, cells):
        rows.append(f"| {title} | " + " | ".join(cells) + " |")

    row("model's step Î", [f"{esc(base.step_words)} ({pct(base.step_prob)})" for _, base, _, _ in named])
    row("final answer (its own step)", [f"{esc(base.answer)}" for _, base, _, _ in named])
    row("your step", [esc(mine.step_words) for _, _, mine, _ in named])
    row("answer under your step", [f"**{esc(answer_under_step(mine))}** "
                                   f"({pct(max(mine.p_answer_step))})" for _, _, mine, _ in named])
    row("answer changed", ["yes" if answer_under_step(mine) != base.answer else "no" for _, base, mine, _ in named])
    row("answer within your step", ["—" if f is None else ("yes" if f else "**no**") for *_, f in named])
    return "\n".join(rows)


def experiment_rates(models: dict[str, Model], names: tuple[str, str], rows: list[dict], policy: str,
                     runner: Callable[..., list], step=None, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> tuple[list[dict], list[str]]:
    """One file under one policy on both models (``runner(spec, inputs, policy, **kwargs)`` runs a chunk): a row of
    rates per model, and the plan's notices (of the first)."""
    out, notices = [], []
    a, b = pair(models, *names)
    plans = [exp.make_plan(m.pipe, rows, policy, step, seed) for m in (a, b)]  # both checked before any model work
    total = sum(p.rows for p in plans)
    for k, (m, plan) in enumerate(zip((a, b), plans)):
        def tick(done, _, before=k * plans[0].rows):
            if progress is not None:
                progress(before + done, total)

        records = exp.run(plan, functools.partial(runner, m.spec), tick)
        s = exp.summary(records)
        out.append({"model": m.name, "rows": plan.rows, "injections": s["injections"],
                    "answer changed": pct(s["flip_rate"]), "answer follows the step": pct(s["following_rate"]),
                    "accuracy (model)": pct(s["accuracy_model"]),
                    "accuracy under the injected step": pct(s["accuracy_under_injected"])})
        notices = notices or plan.notices
    return out, notices
