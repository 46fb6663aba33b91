"""Relation inputs written by hand: ``[[subject]]`` and ``{{object}}`` marked inside a sentence."""
from __future__ import annotations

import re

SUBJ_OPEN, SUBJ_CLOSE, OBJ_OPEN, OBJ_CLOSE = "[[", "]]", "{{", "}}"
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
    plain = re.sub(r"\[\[|\]\]|\{\{|\}\}", "", text)
    return {"text": " ".join(plain.split()), "subj": subj, "obj": obj}
