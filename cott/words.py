"""A text's words as attributions see them: whitespace-separated words of the main text, each token of the text
mapped to its word (sub-tokens grouped, WordPiece or byte-level BPE), a relation's ``@``/``#`` markers set apart and
the subject's and object's words marked by role."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .relation_input import OBJ_MARK, SUBJ_MARK
from .template import TEXT_TOKEN_LIMIT

MAX_WORDS = 128  # words attributed per text; a longer text is refused (the prompt keeps fewer tokens anyway)


def split_words(main: str, relation: bool) -> tuple[list[tuple[int, int]], list[str], list[bool]]:
    """Character spans of the whitespace words of ``main``, each word's role, and whether it is a marker."""
    spans = [m.span() for m in re.finditer(r"\S+", main)]
    roles, markers, inside = [], [], {SUBJ_MARK: False, OBJ_MARK: False}
    for a, b in spans:
        w = main[a:b]
        marker = relation and w in inside
        if marker:
            inside[w] = not inside[w]
        roles.append("subject" if inside[SUBJ_MARK] and not marker else "object" if inside[OBJ_MARK] and not marker else "")
        markers.append(marker)
    return spans, roles, markers


def token_words(offsets: list[tuple[int, int]], spans: list[tuple[int, int]], main: str) -> list[int]:
    """The word index of each token, from its character offsets (its first non-space character)."""
    starts = [a for a, _ in spans]
    out = []
    for a, b in offsets:
        while a < b and main[a].isspace():
            a += 1
        out.append(max(0, bisect.bisect_right(starts, a) - 1))
    return out


@dataclass
class Parsed:
    """An input's words and where each sits in a prompt."""

    words: list[str]
    roles: list[str]
    word_of_token: list[int]  # main-text token -> index into words, or -1 for a marker
    text_ids: list[int]


def parse(model, fields: dict) -> Parsed:
    """Tokenize the main text once with offsets and group its tokens into words (markers apart)."""
    template = model.template
    main = template.main_string(fields[template.main])
    spans, roles, markers = split_words(main, template.main == "marked")
    kept = [i for i, m in enumerate(markers) if not m]
    if len(kept) > MAX_WORDS:
        raise ValueError(f"the text has {len(kept):,} words; attributions are computed for at most {MAX_WORDS}")
    roles = [roles[i] for i in kept]
    if template.main != "marked" and fields.get("marked"):  # a relation read unmarked: its roles from the marked text
        marked = fields["marked"]
        mspans, mroles, mmarkers = split_words(marked, True)
        if [marked[a:b] for (a, b), m in zip(mspans, mmarkers) if not m] == [main[spans[i][0] : spans[i][1]] for i in kept]:
            roles = [r for r, m in zip(mroles, mmarkers) if not m]
    index = {w: j for j, w in enumerate(kept)}
    tok = model.tokenizer(main, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
                          max_length=TEXT_TOKEN_LIMIT)
    of = [index.get(w, -1) for w in token_words(tok["offset_mapping"], spans, main)]
    return Parsed([main[spans[i][0] : spans[i][1]] for i in kept], roles, of, list(tok["input_ids"]))
