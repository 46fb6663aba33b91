"""Task declarations: a template, the step and answer label words, and a loader. A new task is one entry."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

from . import data

HIERARCHY = "classification"  # step = parent label, answer = leaf label
RELATION = "relation"  # step = (subject type, object type), answer = relation


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    template: str  # CoTT template, with [C]
    prompt_template: str  # the single-step prompt-tuning baseline: no [C]
    loader: Callable[..., Sequence]  # (data, split) -> cott.examples.Examples
    finetune_template: str = "[T]"  # the fine-tuning baseline's input ([CLS] classifier, no mask)
    step_words: dict = field(default_factory=dict)  # label -> word(s); default: from the label name
    answer_words: dict = field(default_factory=dict)
    description: str = ""


# [T:marked]: the sentence with "@ subject @" and "# object #" (untyped markers), so every method sees where the
# pair is in the sentence; checkpoints trained before the markers keep their recorded "[T] ..." templates.
_RELATION_TEMPLATE = '[T:marked] The [C] " [T:subj] " and the [C] " [T:obj] " : " [T:subj] " [A] " [T:obj] " .'
_RELATION_PROMPT = '[T:marked] " [T:subj] " [A] " [T:obj] " .'
_RELATION_FINETUNE = '[T:marked] " [T:subj] " " [T:obj] " .'  # the classifier must see which pair it classifies
_CONLL04_TYPES = {"Peop": "person", "Loc": "location", "Org": "organization", "Other": "other"}
_CONLL04_RELATIONS = {
    "Work_For": "works for",
    "Kill": "killed",
    "OrgBased_In": "based in",
    "Live_In": "lives in",
    "Located_In": "located in",
    "no_relation": "unrelated to",
}

TASKS: dict[str, Task] = {
    "clinc150": Task(
        "clinc150",
        HIERARCHY,
        "[T] The domain is [C]. The intent is [A].",
        "[T] The intent is [A].",
        data.load_clinc150,
        description="CLINC150 intent classification: domain (10) -> intent (150).",
    ),
    "wos": Task(
        "wos",
        HIERARCHY,
        "[T] The domain is [C]. The area is [A].",
        "[T] The area is [A].",
        data.load_wos,
        step_words={"CS": "computer science", "ECE": "electrical engineering", "MAE": "mechanical engineering",
                    "Civil": "civil engineering"},
        description="Web of Science hierarchical classification: domain (7) -> area (134).",
    ),
    "conll04": Task(
        "conll04",
        RELATION,
        _RELATION_TEMPLATE,
        _RELATION_PROMPT,
        data.load_tacred,
        _RELATION_FINETUNE,
        step_words=_CONLL04_TYPES,
        answer_words=_CONLL04_RELATIONS,
        description="CoNLL04 relation classification: subject and object types -> relation.",
    ),
    "tacred": Task(
        "tacred",
        RELATION,
        _RELATION_TEMPLATE,
        _RELATION_PROMPT,
        data.load_tacred,
        _RELATION_FINETUNE,
        answer_words={"no_relation": "unrelated to"},
        description="TACRED-layout relation classification (TACRED, TACREV, Re-TACRED).",
    ),
    "jsonl": Task(
        "jsonl",
        HIERARCHY,
        "[T] The category is [C]. The label is [A].",
        "[T] The label is [A].",
        data.load_jsonl,
        description='Generic JSON lines: {"text", "step", "label"} per line.',
    ),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def loader_of(task: Task, columns: dict[str, str] | None = None) -> Callable[..., Sequence]:
    """``task``'s loader, reading the generic task's columns under the source's names (``--columns``) when given."""
    return partial(task.loader, columns=columns) if columns else task.loader


def checkpoint_loader(config, columns: dict[str, str] | None = None, task: str | None = None):
    """The loader of a checkpoint's data (``config``: its ``CheckpointConfig``): its task's (or ``task``'s), with the
    column names it was trained with unless ``columns`` overrides them."""
    return loader_of(get_task(task or config.task), columns or config.training.get("columns"))


def label_sets(examples) -> tuple[list[str], list[str]]:
    """Sorted step labels (over all slots) and answer labels seen in ``examples``."""
    steps = sorted({s for e in examples for s in (e.step or ())})
    answers = sorted({e.label for e in examples if e.label is not None})
    return steps, answers


def hierarchy(examples) -> dict[str, str]:
    """answer -> its step (parent), for single-slot hierarchical tasks."""
    return {e.label: e.step[0] for e in examples if e.step and len(e.step) == 1}
