"""Verbalizers: label words per label, pooled over their sub-tokens into a label score at a mask."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch


def label_to_words(label: str) -> str:
    """``credit_limit_change`` -> ``credit limit change``; ``Peop`` stays ``Peop``."""
    return " ".join(label.replace("_", " ").replace("/", " ").replace("-", " ").split())


class Verbalizer:
    """Maps labels to label words and label words to the vocabulary.

    A label's score at a mask is the mean (or first, with ``pooling="first"``) of the MLM logits of its
    words' sub-tokens, averaged over its words. Only the candidate tokens of all label words are ever
    scored, so the head never multiplies by the full vocabulary.
    """

    def __init__(
        self,
        labels: Sequence[str],
        words: Mapping[str, Sequence[str] | str] | None = None,
        pooling: str = "mean",
    ):
        if not labels:
            raise ValueError("a verbalizer needs at least one label")
        if len(set(labels)) != len(labels):
            raise ValueError("duplicate labels in verbalizer")
        if pooling not in ("mean", "first"):
            raise ValueError(f"pooling must be 'mean' or 'first', not {pooling!r}")
        words = dict(words or {})
        unknown = set(words) - set(labels)
        if unknown:
            raise ValueError(f"label words given for unknown labels: {sorted(unknown)[:5]}")
        self.labels = list(labels)
        self.pooling = pooling
        self.words: dict[str, list[str]] = {}
        for label in self.labels:
            given = words.get(label)
            given = [given] if isinstance(given, str) else list(given or [label_to_words(label)])
            if not all(w.strip() for w in given):
                raise ValueError(f"empty label word for label {label!r}")
            self.words[label] = given
        self.token_ids: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"unknown label {label!r}") from None

    def phrase(self, label: str) -> str:
        """The words written into a [C] slot when this label is injected."""
        return self.words[label][0]

    def bind(self, tokenizer) -> "Verbalizer":
        """Tokenize the label words: builds the candidate tokens and a (labels x tokens) pooling matrix."""
        # Byte-level BPE vocabularies distinguish a word after a space; masks sit after spaces in templates.
        bpe = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" a")) != tokenizer.convert_tokens_to_ids(
            tokenizer.tokenize("a")
        )
        per_label: list[dict[int, float]] = []
        for label in self.labels:
            weights: dict[int, float] = {}
            for word in self.words[label]:
                ids = tokenizer.encode((" " + word) if bpe else word, add_special_tokens=False)
                if not ids:
                    raise ValueError(f"label word {word!r} of {label!r} tokenizes to nothing")
                if self.pooling == "first":
                    ids = ids[:1]
                for t in ids:
                    weights[t] = weights.get(t, 0.0) + 1.0 / (len(ids) * len(self.words[label]))
            per_label.append(weights)
        vocab = sorted({t for w in per_label for t in w})
        col = {t: i for i, t in enumerate(vocab)}
        matrix = torch.zeros(len(self.labels), len(vocab))
        for row, weights in enumerate(per_label):
            for t, w in weights.items():
                matrix[row, col[t]] = w
        self.token_ids = torch.tensor(vocab, dtype=torch.long)
        self.weights = matrix
        return self

    def to_dict(self) -> dict:
        return {"labels": self.labels, "words": self.words, "pooling": self.pooling}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Verbalizer":
        return cls(d["labels"], d.get("words"), d.get("pooling", "mean"))
