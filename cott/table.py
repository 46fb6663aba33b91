"""A user's table of inputs (CSV, JSON lines, JSON array or Parquet), read with ``datasets``: a ``text`` column,
optional ``step`` and ``label`` columns (and ``subj``/``obj`` for relations). The same rows checks serve the
generic task's CSV and Parquet files and Hub datasets (``table_examples``)."""
from __future__ import annotations

import csv
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .examples import DataError, Example, quiet
from .steps import join, split

TABLE_COLUMNS = ("text", "step", "label", "subj", "obj")  # the columns read; others are ignored
_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json", ".parquet": "parquet"}


def read_rows(path: str | Path, max_rows: int | None = None) -> list[dict]:
    """The rows of ``path`` as dicts of the known columns (missing or empty cells are None).

    Raises ``DataError`` naming the file (and the row) for an unreadable file, no ``text`` column, an empty
    table, a row without text, or more than ``max_rows`` rows.
    """
    path = Path(path)
    with _opened(path) as (table, first):
        if max_rows is not None and len(table) > max_rows:
            raise DataError(path, f"{len(table):,} rows; the limit is {max_rows:,}: split the file")
        return [row for _, row in rows(table, path, first)]


def file_examples(path: Path, columns: dict[str, str]) -> Iterator[Example]:
    """The generic task's examples of a CSV or Parquet file whose columns ``columns`` names (ours -> the file's)."""
    with _opened(path, columns) as (table, first):
        yield from table_examples(table, path, first)


def table_examples(table, where, first: int = 1, unit: str = "line") -> Iterator[Example]:
    """The generic task's examples of a checked ``table`` (``checked``): text, a step ("a | b" for several slots)
    and a label per row; ``DataError`` names ``where`` and the row's ``unit`` (row ``first`` is the first)."""
    for no, row in rows(table, where, first, unit):
        for key in ("label", "step"):
            if row[key] is None:
                raise DataError(where, f"missing field {key!r}", no, unit)
        yield Example({"text": row["text"]}, split(row["step"]), row["label"])


def checked(table, where, columns: dict[str, str] | None = None):
    """``table`` (a ``datasets.Dataset``) with the columns that ``columns`` maps (ours -> the source's) renamed to
    ours; raises ``DataError`` for a missing column or no rows."""
    columns = {ours: theirs for ours, theirs in (columns or {}).items() if ours != theirs}
    found = ", ".join(table.column_names[:8]) or "none"
    for theirs in [columns.get("text", "text"), *columns.values()]:
        if theirs not in table.column_names:
            raise DataError(where, f'no "{theirs}" column (found: {found})')
    table = table.remove_columns([c for c in columns if c in table.column_names and c not in columns.values()])
    table = table.rename_columns({theirs: ours for ours, theirs in columns.items()})
    if len(table) == 0:
        raise DataError(where, f"the {'file' if isinstance(where, Path) else 'split'} has no rows")
    return table


def rows(table, where, first: int = 1, unit: str = "line") -> Iterator[tuple[int, dict]]:
    """(number, row) for each row of a checked ``table``: a dict of every known column, the cells as text (a list
    joined by " | ", a class label by its name) or None; raises ``DataError`` for a row without text."""
    cols = [c for c in TABLE_COLUMNS if c in table.column_names]
    names = [getattr(table.features[c], "names", None) for c in cols]  # a ClassLabel column holds indices
    number = first
    for batch in table.select_columns(cols).iter(batch_size=1000):
        for values in zip(*(batch[c] for c in cols)):
            row = dict.fromkeys(TABLE_COLUMNS) | {c: _cell(_named(v, n)) for c, v, n in zip(cols, values, names)}
            if row["text"] is None:
                raise DataError(where, 'the "text" cell is empty', number, unit)
            yield number, row
            number += 1


def _named(value, names: list[str] | None):
    """A class label's name (None for a missing label, -1), or any other ``value`` as it is."""
    if names is None or value is None:
        return value
    return names[value] if 0 <= value < len(names) else None


@contextmanager
def _opened(path: Path, columns: dict[str, str] | None = None):
    """The checked table of the file ``path``, memory-mapped from a temporary cache while open, and the line of its
    first row (a CSV's header is line 1)."""
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    fmt = _FORMATS.get(path.suffix.lower()) or ("json" if path.read_bytes()[:1] in (b"{", b"[") else "csv")
    with tempfile.TemporaryDirectory(prefix="cott_table_") as cache:
        yield checked(_load(path, fmt, cache), path, columns), 2 if fmt == "csv" else 1


def _load(path: Path, fmt: str, cache: str):
    import datasets

    quiet()
    kwargs = {}
    if fmt == "csv":  # every column read as text: a step or label that looks like a number stays text
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            header = next(csv.reader(f, delimiter=delimiter), [])
        kwargs = {"delimiter": delimiter,
                  "features": datasets.Features({h: datasets.Value("string") for h in header})}
    if fmt == "json" and path.read_text(encoding="utf-8", errors="replace").lstrip()[:1] == "[":
        return _json_array(path)
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache, **kwargs)
    except Exception as err:  # datasets raises many types for a malformed file; name the file and the cause
        if "corresponds to no data" in str(err):  # a header and nothing else
            raise DataError(path, "the file has no rows") from None
        cause = err.__cause__ or err
        raise DataError(path, f"could not be read as {fmt.upper()}: {type(cause).__name__}: {cause}"[:500]) from None


def json_objects(content: str) -> list[dict]:
    """The objects of a JSON array, a file's ``content``: the one JSON-array reader of uploaded tables, here and in
    the demo's batch files (``cott_demo.files``), which word their own messages. Raises ``ValueError`` for text
    that is not JSON and ``TypeError`` for JSON that is not an array of objects."""
    data = json.loads(content)
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise TypeError("not an array of objects")
    return data


def _json_array(path: Path):
    import datasets

    try:
        data = json_objects(path.read_text(encoding="utf-8"))
    except ValueError as err:  # UnicodeDecodeError is one too
        raise DataError(path, f"not valid JSON ({err})") from None
    except TypeError:
        raise DataError(path, "a JSON file must be an array of objects, or one object per line") from None
    cols = [c for c in TABLE_COLUMNS if any(c in d for d in data)]
    return datasets.Dataset.from_dict({c: [d.get(c) for d in data] for c in cols})


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # a step given as one label per slot
        value = join([str(v) for v in value])
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict) else str(value)
    return text if text.strip() else None
