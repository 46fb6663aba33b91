"""A checkpoint's configuration (``cott.json``) as a frozen, typed record: each default is declared here, once."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .steps import MODES

MAX_LENGTH = 128  # tokens of a prompt when a checkpoint does not say; only the text is ever cut to fit
ANSWER_MODE = "rectified"  # the distribution a checkpoint answers from when it does not say (cott.steps.MODES)
KINDS = ("classification", "relation")
REQUIRED = ("template", "answer_verbalizer", "answer_head", "weights", "backbone")


@dataclass(frozen=True)
class CheckpointConfig:
    """What a checkpoint says about its model; ``from_json`` reads any ``cott.json`` this library wrote."""

    template: str  # the prompt: [T] text, [C] step slots, [A] the answer
    backbone: str  # the masked LM it was trained from (a delta checkpoint's base)
    answer_head: str  # "verbalizer" or "linear"
    answer_verbalizer: Mapping[str, Any]  # Verbalizer.to_dict() of the answers
    weights: str  # "full" or "delta"
    step_verbalizer: Mapping[str, Any] | None = None  # of the steps; None for a model that answers directly
    task: str | None = None  # cott.tasks name
    kind: str = "classification"  # or "relation"
    method: str | None = None  # "cott" or a baseline
    answer_mode: str = ANSWER_MODE  # which distribution gives the answer (cott.steps.final_distribution)
    max_length: int = MAX_LENGTH
    description: str | None = None
    step_answers: Mapping[str, list[str]] = field(default_factory=dict)  # step label -> the answers consistent with it
    hierarchy: Mapping[str, str] | None = None  # answer -> its step, for a classification whose labels nest
    out_of_scope: Mapping[str, Any] | None = None  # experiments.out_of_scope's fit: {"signal", "threshold", ...}
    calibration: Mapping[str, Any] | None = None  # experiments.calibration's fit of step_temperature
    step_temperature: float = 1.0  # p(I|x) is softmax(logits / T)
    proj_dim: int = 128
    soft_verbalizer: bool = False
    weights_dtype: str = "float32"
    metrics: Mapping[str, Any] = field(default_factory=dict)  # readings by split
    training: Mapping[str, Any] = field(default_factory=dict)  # the settings and command that trained it
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the record as read (history)

    @classmethod
    def from_json(cls, record: Mapping) -> "CheckpointConfig":
        """The typed config of a ``cott.json`` record: missing keys take the defaults above, unknown ones stay in
        ``raw``. ValueError names a missing or bad key."""
        for key in REQUIRED:
            if key not in record:
                raise ValueError(f"missing key {key!r}")
        known = {f.name for f in fields(cls)} - {"raw"}
        tables = {"step_answers", "metrics", "training"}  # null in an old record: empty
        given = {k: v for k, v in record.items() if k in known and not (k in tables and v is None)}
        table = given.get("step_answers")
        if table is None:  # no recorded table: the inverse of the hierarchy, if there is one
            table = {}
            for answer, parent in (given.get("hierarchy") or {}).items():
                table.setdefault(parent, []).append(answer)
        given["step_answers"] = {s: sorted(a) for s, a in table.items()}
        return cls(**given, raw=dict(record))

    def __post_init__(self):
        t = self.step_temperature
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < math.inf:
            raise ValueError(f"step_temperature must be a positive number, not {t!r}")
        object.__setattr__(self, "step_temperature", float(t))  # frozen: the one normalisation of a field
        if self.answer_mode not in MODES:
            raise ValueError(f"answer_mode must be one of {', '.join(MODES)}, not {self.answer_mode!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not isinstance(self.max_length, int) or isinstance(self.max_length, bool) or self.max_length < 1:
            raise ValueError(f"max_length must be a positive whole number, not {self.max_length!r}")

    def to_json(self) -> dict:
        """The record to write as ``cott.json``: what was read, with every typed value (defaults included)."""
        return dict(self.raw) | {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "raw"}


def _plain(value):
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value
