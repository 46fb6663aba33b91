"""Examples stored as Arrow rows in the ``datasets`` cache, memory-mapped: read from disk as they are used.

A loader parses its file into ``Example``s one at a time and ``collect`` writes them to an Arrow file keyed by what
they were read from (path, size, modification time, split, options) and by this package's parsing code, so an
edited file or an edited parser is never served from a stale cache. ``Examples`` reads them back like a list.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Callable, Iterable, Iterator

# The modules whose code decides what a loader yields: their source is part of every cache key.
_PARSERS = ("data.py", "examples.py", "hub.py", "relation_input.py", "table.py")


class DataError(ValueError):
    """A dataset file that cannot be read as the expected format (raised by every loader, ``cott.data`` and below)."""

    def __init__(self, path, problem: str, line: int | None = None, unit: str = "line"):
        where = f"{path}" + (f", {unit} {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class Example:
    """One input: its text fields (``text``, and for relations ``subj``/``obj``), gold step and answer."""

    fields: dict[str, str]
    step: tuple[str, ...] | None
    label: str | None
    meta: dict = field(default_factory=dict)


def _features():
    """The row schema: ``fields`` and ``meta`` as JSON text (any keys, in their order), the step a list or null."""
    import datasets

    string = datasets.Value("string")
    return datasets.Features({"fields": string, "step": datasets.List(string), "label": string, "meta": string})


def _row(example: Example) -> dict:
    return {"fields": json.dumps(example.fields, ensure_ascii=False),
            "step": None if example.step is None else list(example.step), "label": example.label,
            "meta": json.dumps(example.meta, ensure_ascii=False)}


def _example(fields: str, step: list | None, label: str | None, meta: str) -> Example:
    return Example(json.loads(fields), None if step is None else tuple(step), label, json.loads(meta))


class Examples(Sequence):
    """A sequence of ``Example`` over a ``datasets.Dataset`` of rows: ``len``, iteration, ``[i]`` for one example,
    and ``[a:b]`` or ``[indices]`` for another ``Examples`` (``Dataset.select``: no copy of the rows)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return self.dataset.num_rows

    def __getitem__(self, index):
        rows = range(len(self))
        if isinstance(index, slice):  # datasets refuses an empty range at the end: select an empty list
            return Examples(self.dataset.select(rows[index] or []))
        if not isinstance(index, Integral):
            return Examples(self.dataset.select([rows[i] for i in index]))
        return _example(**self.dataset[rows[index]])

    def __iter__(self) -> Iterator[Example]:
        for batch in self.dataset.iter(batch_size=1000):
            yield from map(_example, batch["fields"], batch["step"], batch["label"], batch["meta"])

    def __repr__(self) -> str:
        return f"Examples({len(self)} rows, {[f['filename'] for f in self.dataset.cache_files] or 'in memory'})"


def collect(examples: Callable[[], Iterable[Example]], key: dict) -> Examples:
    """The ``Examples`` that ``examples()`` yields, written once to the datasets cache under ``key`` (JSON: what they
    were read from) and the parsers' code, then memory-mapped. A ``DataError`` it raises is raised as it is."""
    import datasets
    from datasets.exceptions import DatasetGenerationError

    quiet()
    fingerprint = hashlib.sha256(json.dumps([key, _code()], sort_keys=True).encode()).hexdigest()[:32]
    try:
        dataset = datasets.Dataset.from_generator(_rows, features=_features(), cache_dir=cache_dir(),
                                                  gen_kwargs={"examples": examples}, fingerprint=fingerprint)
    except DatasetGenerationError as err:  # datasets wraps what the generator raised
        raise (err.__cause__ or err) from None
    except ValueError as err:
        if "corresponds to no data" not in str(err):  # datasets refuses to cache zero rows
            raise
        dataset = datasets.Dataset.from_dict({name: [] for name in _features()}, features=_features())
    return Examples(dataset)


def _rows(examples: Callable[[], Iterable[Example]]) -> Iterator[dict]:
    return map(_row, examples())


def cache_dir() -> str | None:
    """The datasets cache: ``HF_DATASETS_CACHE`` as set now (tests point it elsewhere), else datasets' default."""
    return os.environ.get("HF_DATASETS_CACHE") or None


def quiet() -> None:
    """No progress bars or info logs from ``datasets``: a loader's output is the run's own log."""
    import datasets

    datasets.disable_progress_bars()
    logging.getLogger("datasets").setLevel(logging.ERROR)


def _code() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in _PARSERS)).hexdigest()


class TextsOf(Sequence):
    """The ``text`` field of each of ``examples``, read when indexed (the MLM warm-up draws a few at random)."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> str:
        return self.examples[index].fields["text"]
