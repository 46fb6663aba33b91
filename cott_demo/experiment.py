"""The Experiment tab's logic (pure Python, no Gradio): a file of inputs checked against a model and a policy before
any model work, the counterfactual injections run in chunks of rows, and the results laid out as rows and plot data.

The file's columns (CSV with a header row, JSON lines, or a JSON array of objects):

- ``text``: the input. For a relation model, the text with ``[[subject]]`` and ``{{object}}`` marked, or plain text
  with ``subj`` and ``obj`` columns.
- ``label`` (optional): the gold answer. It gives the model's accuracy and the accuracy under the injected steps;
  a label the model does not know counts as no label (the status says how many).
- ``step`` (optional): under the **given** policy, the step to inject into that row (any known step, right or
  wrong; every row needs one). Under every other policy it is the row's **gold step**: **gold** injects it (the
  oracle; every row needs one), **random_wrong** never draws it, and the CSV shows it beside the model's step.

Steps are written as a label or its words, as everywhere in the app (``cott.steps``: ``credit_cards`` or
``credit cards``; ``Peop | Org`` or ``person | organization`` for a step with two parts); a step the model does not
know is refused (free-text steps are for the Ask tab, one text at a time). Results show every step in words.
The library (``CoTTPipeline.counterfactuals``, ``cott.counterfactual.summarise``) does the model work and the sums.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cott.counterfactual import POLICIES, CounterfactualRecord, summarise
from cott.data import DataError
from cott.table import read_rows

from .inputs import CUT_NOTE, MAX_CHARS, MAX_UPLOAD_BYTES, InputError

EXPERIMENT_MAX_ROWS = 2_000  # rows of one experiment
MAX_INJECTIONS = 20  # injected steps per row ("all" injects every known step)
CHUNK = 128  # injections per call to the model (and per step of the progress bar), in whole rows
POLICY_CHOICES = [  # (what the user reads, the library's policy)
    ("A fixed step for every row", "fixed"),
    ("The file's step column (a step per row)", "given"),
    ("The gold step (the file's step column): the oracle", "gold"),
    ("The runner-up: the model's second most likely step", "runner_up"),
    ("A random wrong step (seeded)", "random_wrong"),
    ("Every known step", "all"),
]
POLICY_NAMES = {value: text for text, value in POLICY_CHOICES}
RECORD_COLUMNS = ["row", "text", "model_step", "model_step_prob", "model_answer", "gold_step", "gold_label", "model_correct",
           "injected_step", "answer", "answer_prob", "changed", "follows", "correct", "note"]
SCOPE_VERDICT = "out of scope: unlike anything the model was trained on; its answer is a guess"  # a row's note
MAX_PLOT_STEPS = 30  # rows of the heatmap and bars of the rates: the most injected steps
MAX_PLOT_ANSWERS = 20  # heatmap columns when they are answers (no hierarchy): the most frequent ones
OTHER = "(other)"

Runner = Callable[..., list]  # runner(inputs, policy, steps=, gold_steps=, labels=, constrained=, seed=) -> records


FIRST_ROWS = f"Run its first {EXPERIMENT_MAX_ROWS:,} rows with the button below"  # what a file over EXPERIMENT_MAX_ROWS rows is offered


class TooManyRows(InputError):
    """A file over EXPERIMENT_MAX_ROWS rows: refused, unless the user asks for its first EXPERIMENT_MAX_ROWS rows."""


@dataclass
class Plan:
    """An experiment checked and ready to run: what goes to the model, per row."""

    policy: str
    inputs: list  # a text, or a dict with text/subj/obj, per row
    steps: str | list[str] | None = None  # fixed: the step label; given: a step label per row
    gold_steps: list[str | None] | None = None  # the file's step column under every policy but "given"
    labels: list[str | None] | None = None  # gold answers the model knows (None: absent or unknown)
    constrained: bool = False
    seed: int = 0
    per_row: int = 1  # injected steps per row
    notices: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.inputs)


# ---- reading the file --------------------------------------------------------------------------
def read_file(path: str) -> list[dict]:
    """The rows of an uploaded file within the upload and row limits (over EXPERIMENT_MAX_ROWS: TooManyRows); raises InputError."""
    rows = _all_rows(path)
    if len(rows) > EXPERIMENT_MAX_ROWS:
        raise TooManyRows(f"{Path(path).name}: {len(rows):,} rows; the limit is {EXPERIMENT_MAX_ROWS:,}. {FIRST_ROWS}, or split "
                          "it.")
    return rows


def read_first(path: str) -> tuple[list[dict], list[str]]:
    """The first EXPERIMENT_MAX_ROWS rows of an uploaded file, and a notice when there were more; raises InputError."""
    rows = _all_rows(path)
    cut = [f"The file has {len(rows):,} rows; only the first {EXPERIMENT_MAX_ROWS:,} were run."] if len(rows) > EXPERIMENT_MAX_ROWS else []
    return rows[:EXPERIMENT_MAX_ROWS], cut


def _all_rows(path: str) -> list[dict]:
    """Every row of an uploaded file (``cott.table.read_rows``) within the upload limit; raises InputError."""
    name = Path(path).name
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB. "
                         "Split it.")
    try:
        return read_rows(path)
    except DataError as err:  # the message names the upload's temporary path: show the file's name instead
        raise InputError(str(err).replace(str(path), name, 1)) from None
    except (UnicodeDecodeError, OSError) as err:
        raise InputError(f"{name}: could not be read ({err}); upload a UTF-8 CSV or JSON-lines file.") from None


def line_of(row: int, path: str | None) -> str:
    """ "row 3 (line 4)" for a CSV (its header is line 1), "row 3" otherwise."""
    is_csv = path is not None and Path(path).suffix.lower() in (".csv", ".tsv", ".txt")
    return f"row {row} (line {row + 1})" if is_csv else f"row {row}"


# ---- checking it against the model and the policy ----------------------------------------------
def resolve_step(pipe, step, where: str = "The step") -> str:
    """The label of a known step written as a label or as words; raises InputError naming the known steps."""
    label = pipe.step_space.label(step)
    if label is None:
        raise InputError(f"{where} {str(step)[:80]!r} is not a step this model knows (its steps: "
                         f"{pipe.step_space.listed()}). Write a known step's label or its words.")
    return label


def injections_per_row(pipe, policy: str) -> int:
    return len(pipe.steps) if policy == "all" else 1


def make_plan(pipe, rows: list[dict], policy: str, step=None, seed=0, constrained: bool = False,
              path: str | None = None) -> Plan:
    """Check every row against the model and the policy, before any model work; raises InputError."""
    if policy not in POLICIES:
        raise InputError(f"Unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}.")
    if not pipe.has_steps:
        raise InputError("This model answers directly: it has no intermediate step to inject. Choose another model.")
    if constrained and not pipe.step_answers:
        raise InputError('This checkpoint records no step-answer table, so "answer within the step" is not available.')
    per_row = injections_per_row(pipe, policy)
    if per_row > MAX_INJECTIONS:
        raise InputError(f'"{POLICY_NAMES[policy]}" injects {per_row} per row; the limit is {MAX_INJECTIONS}. '
                         "Choose other steps to inject.")
    if policy == "runner_up" and len(pipe.steps) < 2:
        raise InputError(f'"{POLICY_NAMES[policy]}" needs a model with at least two known steps.')
    if not rows:
        raise InputError("The file has no rows.")
    if len(rows) > EXPERIMENT_MAX_ROWS:
        raise TooManyRows(f"The file has {len(rows):,} rows; the limit is {EXPERIMENT_MAX_ROWS:,}. Split it.")
    try:
        seed = int(seed or 0)
    except (TypeError, ValueError):
        raise InputError(f"The seed must be a whole number, not {seed!r}.") from None
    plan = Plan(policy, [], constrained=bool(constrained), seed=seed, per_row=per_row)
    if policy == "fixed":
        if step is None or not str(step).strip():
            raise InputError(f'"{POLICY_NAMES[policy]}" needs a step: pick or type one (a label or its words).')
        plan.steps = resolve_step(pipe, step, "The fixed step")
    column = [r.get("step") for r in rows]
    if policy in ("given", "gold") and not all(column):
        what = "the step to inject" if policy == "given" else "the gold step to inject"
        if not any(column):
            raise InputError(f'"{POLICY_NAMES[policy]}" needs a "step" column ({what} into each row); the file has '
                             "none.")
        first = next(n for n, s in enumerate(column, 1) if not s)
        raise InputError(f'"{POLICY_NAMES[policy]}" needs a step in every row ({what}): {line_of(first, path)} has none, '
                         f"and {sum(1 for s in column if not s):,} of {len(rows):,} rows in all.")
    if any(column):
        labels = [None if s is None else resolve_step(pipe, s, f"{line_of(n, path).capitalize()}: the step")
                  for n, s in enumerate(column, 1)]
        if policy == "given":
            plan.steps = labels
        else:
            plan.gold_steps = labels
    plan.labels = _labels(pipe, rows, plan.notices)
    plan.inputs = _inputs(pipe, rows, path, plan.notices)
    return plan


def _labels(pipe, rows, notices) -> list | None:
    given = [r.get("label") for r in rows]
    if not any(given):
        return None
    known = set(pipe.labels)
    unknown = [g for g in given if g is not None and g not in known]
    if unknown:
        notices.append(f"{len(unknown):,} rows have a label this model does not know (e.g. {unknown[0][:40]!r}); "
                       "accuracy leaves them out.")
    return [g if g in known else None for g in given]


def _inputs(pipe, rows, path, notices) -> list:
    """Each row's input, checked the way the pipeline reads it; texts over MAX_CHARS truncated (with a notice)."""
    out, cut = [], 0
    relation = pipe.kind == "relation"
    for n, r in enumerate(rows, 1):
        text = r["text"].replace("\x00", "")
        if len(text) > MAX_CHARS:
            text, cut = text[:MAX_CHARS], cut + 1
        x = {"text": text, "subj": r["subj"], "obj": r["obj"]} if relation and r.get("subj") and r.get("obj") else text
        try:
            pipe.fields(x)  # the pipeline's own check of an input (empty text, a relation's marks)
        except (ValueError, TypeError) as err:
            raise InputError(f"{line_of(n, path).capitalize()}: {err}.") from None
        out.append(x)
    if cut:
        notices.append(f"{cut:,} texts had over {MAX_CHARS:,} characters; only the first {MAX_CHARS:,} were used.")
    return out


# ---- running it --------------------------------------------------------------------------------
def chunk_rows(plan: Plan) -> int:
    """Rows per call to the model: about CHUNK injections, so that a Stop is heard within one chunk."""
    return max(1, CHUNK // plan.per_row)


def run(plan: Plan, runner: Runner, progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None) -> list[CounterfactualRecord]:
    """The records of the rows, in file order: ``runner`` (the pipeline's ``counterfactuals``) on chunks of rows;
    once ``stop()`` is true, the rows done so far (it is asked between chunks).

    The random wrong step of the chunk starting at row ``start`` is drawn with seed ``plan.seed + start``: a seed
    gives the same draws on every run of the same file.
    """
    records = []
    size = chunk_rows(plan)
    for start in range(0, plan.rows, size):
        if stop is not None and stop():
            return records
        if progress is not None:
            progress(start, plan.rows)
        end = start + size
        steps = plan.steps[start:end] if isinstance(plan.steps, list) else plan.steps
        chunk = runner(plan.inputs[start:end], plan.policy, steps=steps,
                       gold_steps=None if plan.gold_steps is None else plan.gold_steps[start:end],
                       labels=None if plan.labels is None else plan.labels[start:end],
                       constrained=plan.constrained, seed=plan.seed + start)
        for rec in chunk:
            rec.index += start
        records += chunk
    if progress is not None:
        progress(plan.rows, plan.rows)
    return records


# ---- laying out the results --------------------------------------------------------------------
def result_rows(records: list[CounterfactualRecord], words: Callable[[str], str]) -> list[dict]:
    """One row per injection (a row without any injection keeps one row with the injection's cells empty); each step
    as ``words`` shows it (the model's ``StepSpace.display``)."""
    out = []
    for rec in records:
        base = {"row": rec.index + 1, "text": rec.text, "model_step": words(rec.step),
                "model_step_prob": rec.step_prob, "model_answer": rec.answer,
                "gold_step": rec.gold_step and words(rec.gold_step), "gold_label": rec.gold_label,
                "model_correct": rec.correct}
        for inj in rec.injections or [None]:
            row = dict(base)
            if inj is not None:
                row.update(injected_step=words(inj.step), answer=inj.answer, answer_prob=inj.answer_prob,
                           changed=inj.changed, follows=inj.follows, correct=inj.correct)
            row["note"] = "; ".join(n for n, said in ((SCOPE_VERDICT, rec.out_of_scope), (CUT_NOTE, rec.truncated)) if said)
            out.append(row)
    return out


def summary(records: list[CounterfactualRecord]) -> dict:
    return summarise(records)


def answer_owners(step_answers: dict[str, list[str]]) -> dict[str, str] | None:
    """Answer -> the one step it belongs to, when the step-answer table is a hierarchy; else None."""
    owners: dict[str, set] = {}
    for step, answers in step_answers.items():
        for a in answers:
            owners.setdefault(a, set()).add(step)
    if not owners or any(len(v) > 1 for v in owners.values()):
        return None
    return {a: next(iter(v)) for a, v in owners.items()}


def heatmap_data(records: list[CounterfactualRecord], step_answers: dict[str, list[str]],
                 words: Callable[[str], str]) -> dict:
    """Injected step (rows) -> the step the answer belongs to (columns; the answers themselves when the step-answer
    table is not a hierarchy): counts and each row's shares. The most injected steps and most frequent answers are
    kept (MAX_PLOT_STEPS, MAX_PLOT_ANSWERS); the rest of the answers are counted as "(other)". Steps as ``words``
    shows them."""
    owners = answer_owners(step_answers)
    pairs = [(inj.step, (owners.get(inj.answer, OTHER) if owners else inj.answer))
             for rec in records for inj in rec.injections]
    rows = _most_common([s for s, _ in pairs], MAX_PLOT_STEPS)
    if owners:
        cols = sorted(set(owners.values()))
        cols += [OTHER] if any(c == OTHER for _, c in pairs) else []
    else:
        cols = _most_common([c for _, c in pairs], MAX_PLOT_ANSWERS)
        if len(set(c for _, c in pairs)) > len(cols):
            cols.append(OTHER)
    counts = [[0] * len(cols) for _ in rows]
    where = {s: i for i, s in enumerate(rows)}
    col = {c: j for j, c in enumerate(cols)}
    for s, c in pairs:
        if s in where:
            counts[where[s]][col.get(c, col.get(OTHER, 0))] += 1
    shares = [[c / max(1, sum(r)) for c in r] for r in counts]
    if owners:
        cols = [c if c == OTHER else words(c) for c in cols]
    return {"steps": [words(s) for s in rows], "columns": cols, "counts": counts, "shares": shares,
            "hierarchy": owners is not None, "steps_total": len(set(s for s, _ in pairs))}


def rates_data(summ: dict, words: Callable[[str], str]) -> dict:
    """Flip and following rates of the most injected steps (MAX_PLOT_STEPS), the most injected first; each step as
    ``words`` shows it."""
    per = summ.get("per_step", {})
    steps = sorted(per, key=lambda s: (-per[s]["injections"], s))[:MAX_PLOT_STEPS]
    return {"steps": [words(s) for s in steps], "injections": [per[s]["injections"] for s in steps],
            "flip_rate": [per[s]["flip_rate"] for s in steps],
            "following_rate": [per[s]["following_rate"] for s in steps], "steps_total": len(per)}


def _most_common(values: list[str], n: int) -> list[str]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sorted(counts, key=lambda v: (-counts[v], v))[:n]
