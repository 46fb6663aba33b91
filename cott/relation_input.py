"""Relation inputs: ``[[subject]]`` and ``{{object}}`` written by hand inside a sentence, and the marked text
``@ subject @ ... # object #`` that templates read through ``[T:marked]``."""
from __future__ import annotations

import re

SUBJ_OPEN, SUBJ_CLOSE, OBJ_OPEN, OBJ_CLOSE = "[[", "]]", "{{", "}}"
SUBJ_MARK, OBJ_MARK = "@", "#"  # untyped entity markers: the mentions' types are the step, never given away
HELP = "mark the subject as [[subject]] and the object as {{object}}, e.g. '[[Ada]] works for {{Acme}}.'"


def parse_marked(text: str) -> dict[str, str]:
    """``"[[Ada]] works for {{Acme}}."`` -> ``{"text": "Ada works for Acme.", "subj": "Ada", "obj": "Acme"}``.

    Raises ``ValueError`` naming the problem when a mark is missing, repeated, unclosed or nested.
    """
    spans = {}
    for name, (open_, close) in {"subject": (SUBJ_OPEN, SUBJ_CLOSE), "object": (OBJ_OPEN, OBJ_CLOSE)}.items():
        n_open, n_close = text.count(open_), text.count(close)
        if n_open == 0 and n_close == 0:
            raise ValueError(f"no {name} marked: {HELP}")
        if n_open != 1 or n_close != 1:
            raise ValueError(f"the {name} must be marked exactly once ({open_}...{close}): {HELP}")
        start, end = text.index(open_), text.index(close)
        if end < start:
            raise ValueError(f"the {name} mark is closed before it is opened: {HELP}")
        spans[name] = (start, end + len(close))
    (s0, s1), (o0, o1) = spans["subject"], spans["object"]
    if s0 < o1 and o0 < s1:
        raise ValueError(f"the subject and object marks overlap or are nested: {HELP}")
    subj = text[s0 + 2 : s1 - 2].strip()
    obj = text[o0 + 2 : o1 - 2].strip()
    if not subj or not obj:
        raise ValueError(f"the {'subject' if not subj else 'object'} mark is empty: {HELP}")
    plain = " ".join(re.sub(r"\[\[|\]\]|\{\{|\}\}", "", text).split())
    marked = text.replace(SUBJ_OPEN, f" {SUBJ_MARK} ").replace(SUBJ_CLOSE, f" {SUBJ_MARK} ")
    marked = marked.replace(OBJ_OPEN, f" {OBJ_MARK} ").replace(OBJ_CLOSE, f" {OBJ_MARK} ")
    return {"text": plain, "subj": subj, "obj": obj, "marked": " ".join(marked.split())}


def mark_spans(text: str, subj: tuple[int, int] | None, obj: tuple[int, int] | None) -> str:
    """``text`` with ``@`` around the subject's and ``#`` around the object's character span ``(start, end)``
    (a ``None`` span is left unmarked)."""
    cuts = []
    for span, mark in ((subj, SUBJ_MARK), (obj, OBJ_MARK)):
        if span is not None:
            cuts += [(span[0], 1, mark), (span[1], 0, mark)]
    out, pos = [], 0
    for at, _, mark in sorted(cuts):  # at one position a closing mark goes before an opening one
        out += [text[pos:at], f" {mark} "]
        pos = at
    out.append(text[pos:])
    return " ".join("".join(out).split())


def _locate(text: str, mention: str, avoid: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The first character span of ``mention`` in ``text`` that does not overlap ``avoid``."""
    start = text.find(mention) if mention else -1
    while start >= 0 and avoid and start < avoid[1] and start + len(mention) > avoid[0]:
        start = text.find(mention, start + 1)
    return (start, start + len(mention)) if start >= 0 else None


def mark_mentions(text: str, subj: str, obj: str) -> str:
    """Mark the first occurrences of ``subj`` and ``obj`` in ``text`` (not overlapping each other); a mention
    that is not in the text stays unmarked."""
    s = _locate(text, subj)
    return mark_spans(text, s, _locate(text, obj, s))
