"""Prompt templates with [T] text slots, one [A] answer slot and [C] convertible slots."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .config import MAX_LENGTH
from .relation_input import OBJ_MARK, SUBJ_MARK

# [T] is the text; [T:marked] the text with a relation's mentions marked (see relation_input); [T:name] another
# text field (e.g. the subject mention); [A] the answer; [C] a step.
MAIN_FIELDS = ("text", "marked")  # a template has exactly one of these: the main text, the slot that is cut first
MARKS = {"subj": SUBJ_MARK, "obj": OBJ_MARK}  # how [T:marked] marks the mentions of these fields
TEXT_TOKEN_LIMIT = 1024  # the main text is cut here before it is fitted to a prompt (bounds the work per input)
_SLOT = re.compile(r"\[(T(?::(\w+))?|A|C)\]")


@dataclass
class Piece:
    kind: str  # "lit", "T", "A" or "C"
    value: str = ""  # literal text, or the text field's name
    space: bool = False  # preceded by whitespace (matters for byte-level BPE)


@dataclass
class Encoding:
    """One filled prompt: token ids plus where the masks are."""

    input_ids: list[int]
    answer_pos: int
    step_pos: list[int] = field(default_factory=list)  # one per [C] slot, only when [C] holds masks
    truncated: bool = False
    text_pos: list[int] = field(default_factory=list)  # where the main text's kept tokens are in input_ids
    text_index: list[int] = field(default_factory=list)  # and which tokens of the main text they are


class Template:
    """A prompt such as ``[T] The domain is [C]. The area is [A].``

    ``[C]`` holds a mask in Step I (the model writes the step) and the words of a step in Step II.
    Only text slots are truncated (the main ``[T]`` first, then fields such as ``[T:subj]``),
    so the masks and the step always survive. The main text keeps its head, or, when it mentions the
    other fields (a relation's subject and object), the tokens around those mentions.
    """

    def __init__(self, text: str):
        self.text = text
        self.pieces = self._parse(text)
        kinds = [p.kind for p in self.pieces]
        if kinds.count("A") > 1:
            raise ValueError(f"template must have at most one [A] slot: {text!r}")
        mains = [p for p in self.pieces if p.kind == "T" and p.value in MAIN_FIELDS]
        if len(mains) != 1:
            raise ValueError(f"template must have exactly one main text slot, [T] or [T:marked]: {text!r}")
        self.main = mains[0].value  # the field that fills the main text slot
        self.num_step_slots = kinds.count("C")
        self._cache: dict[tuple, list[int]] = {}  # literal and step pieces, tokenized once

    @staticmethod
    def _parse(text: str) -> list[Piece]:
        pieces, pos = [], 0
        for m in _SLOT.finditer(text):
            if m.start() > pos:
                pieces.append(Piece("lit", text[pos : m.start()]))
            kind = m.group(1)[0]
            before = text[: m.start()]
            name = (m.group(2) or "text") if kind == "T" else ""
            pieces.append(Piece(kind, name, before[-1:].isspace()))
            pos = m.end()
        if pos < len(text):
            pieces.append(Piece("lit", text[pos:]))
        return pieces

    def fields(self) -> set[str]:
        return {p.value for p in self.pieces if p.kind == "T"}

    def text_ids(self, tokenizer, text: str, limit: int = TEXT_TOKEN_LIMIT) -> list[int]:
        """Tokenize the main text once (cut at ``limit`` tokens; ``encode`` fits it to the prompt)."""
        return tokenizer.encode(self.main_string(text), add_special_tokens=False, truncation=True, max_length=limit)

    def main_string(self, text: str) -> str:
        """The main text exactly as it is tokenized: stripped, with a leading space where the template has one."""
        space = next(p.space for p in self.pieces if p.kind == "T" and p.value == self.main)
        return (" " + text.strip()) if space else text.strip()

    def encode(
        self,
        tokenizer,
        fields: Mapping[str, str],
        step: Sequence[str] | None = None,
        max_length: int = MAX_LENGTH,
        text_ids: list[int] | None = None,
    ) -> Encoding:
        """Fill the slots and tokenize; ``step=None`` puts masks in ``[C]`` (Step I).

        ``text_ids`` may carry the pre-tokenized main text (``text_ids``), to tokenize it once per example; without
        it the main text is tokenized here the same way, cut at ``TEXT_TOKEN_LIMIT`` tokens, so training (which passes
        it) and inference (which does not) build the same prompt for any text.
        """
        if step is not None and len(step) != self.num_step_slots:
            raise ValueError(f"template has {self.num_step_slots} [C] slot(s), step has {len(step)} part(s)")
        missing = self.fields() - set(fields) - ({self.main} if text_ids is not None else set())
        if missing:
            raise ValueError(f"missing text field(s) for the template: {sorted(missing)}")

        def tok(s: str, space: bool) -> list[int]:
            s = s.strip()
            if not s:
                return []
            return tokenizer.encode((" " + s) if space else s, add_special_tokens=False)

        def cached(s: str, space: bool) -> list[int]:
            key = (id(tokenizer), s, space)
            if key in self._cache:
                return self._cache[key]
            ids = tok(s, space)
            if len(self._cache) < 100_000:  # free-text steps from users must not grow it without bound
                self._cache[key] = ids
            return ids

        parts: list[tuple[str, list[int]]] = []
        c_index = 0
        for p in self.pieces:
            if p.kind == "lit":
                lead = p.value[:1].isspace()
                parts.append(("lit", cached(p.value, lead)))
            elif p.kind == "T":
                if p.value == self.main:  # cut at TEXT_TOKEN_LIMIT as training's pre-tokenized text is
                    ids = text_ids if text_ids is not None else self.text_ids(tokenizer, fields[p.value])
                    parts.append(("text", list(ids)))
                else:
                    parts.append(("field", tok(fields[p.value], p.space)))
            elif p.kind == "A":
                parts.append(("A", [tokenizer.mask_token_id]))
            else:
                if step is None:
                    parts.append(("C", [tokenizer.mask_token_id]))
                else:
                    parts.append(("lit", cached(step[c_index], p.space)))
                c_index += 1

        key = (id(tokenizer), "special tokens")
        if key not in self._cache:
            self._cache[key] = _special_tokens(tokenizer)
        prefix, suffix = self._cache[key]
        room = max_length - len(prefix) - len(suffix) - sum(len(ids) for kind, ids in parts if kind not in _CUTTABLE)
        keep = _fit([len(ids) if kind in _CUTTABLE else 0 for kind, ids in parts], [kind for kind, _ in parts], room)
        if keep is None:
            raise ValueError(
                f"max_length={max_length} is too short for this prompt: the template, step and masks alone need "
                f"{max_length - room} tokens, and each text slot keeps at least one; shorten the step or raise max_length"
            )
        truncated = any(k < len(ids) for k, (kind, ids) in zip(keep, parts) if kind in _CUTTABLE)
        if self.main == "marked":  # look for the marked mentions ("@ subject @"), never an unmarked repeat of them
            marked = [f"{mark} {fields[name].strip()} {mark}" for name, mark in MARKS.items() if name in fields]
            mentions = [tok(m, space) for m in marked for space in (True, False)]
        else:
            mentions = [ids for kind, ids in parts if kind == "field"]
        body: list[int] = []
        answer_pos, step_pos, text_pos, text_index = -1, [], [], []
        for k, (kind, ids) in zip(keep, parts):
            if kind == "text":
                text_index = _window(ids, k, mentions)
                text_pos = list(range(len(body), len(body) + len(text_index)))
                ids = [ids[i] for i in text_index]
            elif kind == "field":
                ids = ids[:k]
            if kind == "A":
                answer_pos = len(body)
            elif kind == "C":
                step_pos.append(len(body))
            body.extend(ids)
        input_ids = prefix + body + suffix
        offset = len(prefix)
        # Without [A] (the fine-tuning baseline) the answer is read from the first token.
        answer_pos = answer_pos + offset if answer_pos >= 0 else 0
        return Encoding(input_ids, answer_pos, [s + offset for s in step_pos], truncated,
                        [t + offset for t in text_pos], text_index)


_CUTTABLE = ("text", "field")  # the main text, then the other text fields ([T:subj] ...); never a mask or a step


def _find(ids: list[int], sub: list[int]) -> tuple[int, int] | None:
    """The first ``(start, end)`` of ``sub`` in ``ids``."""
    n = len(sub)
    for i in range(len(ids) - n + 1) if n else ():
        if ids[i : i + n] == sub:
            return i, i + n
    return None


def _window(ids: list[int], k: int, mentions: list[list[int]]) -> list[int]:
    """Which ``k`` tokens of the text to keep (their indices): its head, or the tokens around the mentions found in
    it, in one window when they fit together, else one window per mention (the room shared equally)."""
    if k >= len(ids):
        return list(range(len(ids)))
    spans = sorted({s for m in mentions if (s := _find(ids, m))})
    if not spans:
        return list(range(k))
    lo, hi = spans[0][0], max(e for _, e in spans)
    if hi - lo > k:
        budgets = [k // len(spans) + (i < k % len(spans)) for i in range(len(spans))]
    else:
        spans, budgets = [(lo, hi)], [k]
    kept: set[int] = set()
    for (start, end), room in zip(spans, budgets):
        first = min(max(start - (room - (end - start)) // 2, 0), len(ids) - room)
        kept.update(range(first, first + room))
    return sorted(kept)


def _fit(lengths: list[int], kinds: list[str], room: int) -> list[int] | None:
    """How many tokens each text slot keeps so that all fit in ``room``: the main text is cut first
    (down to one token), then every other field to a common cap (at least one token); ``None`` when
    even that does not fit."""
    text = [i for i, k in enumerate(kinds) if k == "text"]
    others = [i for i, k in enumerate(kinds) if k == "field"]
    keep = list(lengths)
    over = sum(keep) - room
    for i in text:
        cut = min(max(over, 0), max(keep[i] - 1, 0))
        keep[i] -= cut
        over -= cut
    if over > 0 and others:
        cap = max(keep[i] for i in others)
        while over > 0 and cap > 1:
            cap -= 1
            for i in others:
                if keep[i] > cap:
                    keep[i] = cap
                    over -= 1
    return keep if over <= 0 else None


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a single sequence ([CLS] ... [SEP], <s> ... </s>)."""
    ids = tokenizer.encode(tokenizer.mask_token, add_special_tokens=True)
    at = ids.index(tokenizer.mask_token_id)
    return ids[:at], ids[at + 1 :]
