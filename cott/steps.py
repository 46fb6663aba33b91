"""Reasoning steps: a model's known steps, label <-> words, a user's spelling of a step, and the distribution an
answer mode answers from."""
from __future__ import annotations

from typing import Mapping, Sequence

SEP = " | "  # between the parts of a step with several [C] slots: "Peop | Org"
MODES = ("direct", "step2", "rectified", "marginal")  # p(y|x), p(y|x,Î), p~(y|x), top-k marginal
_SOURCE = {"direct": "p_answer", "step2": "p_answer_step", "rectified": "p_rectified", "marginal": "p_marginal"}


def join(parts: Sequence[str]) -> str:
    """A step's parts as one string: ``("Peop", "Org")`` -> ``"Peop | Org"``."""
    return SEP.join(parts)


def split(step) -> tuple[str, ...]:
    """A step as one string ('|' between parts) or a sequence of parts -> its parts, stripped."""
    parts = step if isinstance(step, (list, tuple)) else str(step).split("|")
    return tuple(str(p).strip() for p in parts)


def normalise(step) -> str:
    """How a user's step is matched to a known one: each part lowercased with its spaces collapsed."""
    return join([" ".join(p.split()).lower() for p in split(step)])


def final_distribution(r: Mapping, mode: str):
    """The distribution ``mode`` answers from in ``r`` (``reason``'s output or a ``Prediction.to_dict()``): p(y|x)
    for "direct" and for a model without a step, p(y|x,Î) for "step2", p~(y|x) for "rectified", and the top-k
    marginal for "marginal" (p~(y|x) where it was not computed)."""
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; choose one of {', '.join(MODES)}")
    if r.get("p_answer_step") is None:
        return r["p_answer"]
    source = r.get(_SOURCE[mode])
    return r["p_rectified"] if source is None else source


class StepSpace:
    """A model's known steps (a label per [C] slot) and the words written into [C] for each."""

    def __init__(self, model):
        self.slots = model.num_step_slots
        self.labels: list[tuple[str, ...]] = model.known_steps()
        self.words: list[tuple[str, ...]] = [tuple(model.step_phrase(s)) for s in self.labels]
        self._index: dict[str, int] = {}
        for forms in (self.labels, self.words):  # a label wins over another step's identical words
            for i, form in enumerate(forms):
                self._index.setdefault(normalise(form), i)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        """Every known step's label, "a | b" for several slots (the library's and the files' form)."""
        return [join(s) for s in self.labels]

    @property
    def shown(self) -> list[str]:
        """Every known step in words: how the app shows a step."""
        return [join(w) for w in self.words]

    def find(self, step) -> int | None:
        """The index of the known step written as ``step`` (labels or words, any case and spacing), else None."""
        return self._index.get(normalise(step))

    def label(self, step) -> str | None:
        """The label ("a | b") of a known step written in any accepted spelling, else None."""
        i = self.find(step)
        return None if i is None else join(self.labels[i])

    def display(self, step) -> str:
        """A step in words for the app: a known step's words, free text as it is."""
        i = self.find(step)
        return join(split(step)) if i is None else join(self.words[i])

    def parse(self, step, free_text: bool = True) -> tuple[str | None, tuple[str, ...]]:
        """A user's step -> (its label, None for free text; the words to write into [C]). ValueError when the number
        of parts is not the model's, or, without ``free_text``, the step is not a known one."""
        parts = split(step)
        if len(parts) != self.slots or not all(parts):
            raise ValueError(f"this model's step has {self.slots} part(s); got {sum(map(bool, parts))} non-empty "
                             "part(s)" + (" (separate them with '|')" if self.slots > 1 else ""))
        i = self.find(parts)
        if i is not None:
            return join(self.labels[i]), self.words[i]
        if not free_text:
            raise ValueError(f"{join(parts)[:80]!r} is not a step this model knows (its steps: {self.listed()}); "
                             "write a known step's label or its words")
        return None, parts

    def listed(self, most: int = 12) -> str:
        """The known steps in words, the first ``most`` of them."""
        shown = self.shown
        return ", ".join(shown[:most]) + (f" and {len(shown) - most} more" if len(shown) > most else "")
