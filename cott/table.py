"""A user's table of inputs (CSV, JSON lines, JSON array or Parquet), read with ``datasets``: a ``text`` column,
optional ``step`` and ``label`` columns (and ``subj``/``obj`` for relations)."""
from __future__ import annotations

import csv
import json
import logging
import tempfile
from pathlib import Path

from .data import DataError

COLUMNS = ("text", "step", "label", "subj", "obj")
_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json", ".parquet": "parquet"}


def read_rows(path: str | Path, max_rows: int | None = None) -> list[dict]:
    """The rows of ``path`` as dicts of the known columns (missing or empty cells are None).

    Raises ``DataError`` naming the file (and the row) for an unreadable file, no ``text`` column, an empty
    table, a row without text, or more than ``max_rows`` rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    fmt = _FORMATS.get(path.suffix.lower()) or ("json" if path.read_bytes()[:1] in (b"{", b"[") else "csv")
    table = _load(path, fmt)
    if "text" not in table.column_names:
        found = ", ".join(table.column_names[:8]) or "none"
        raise DataError(path, f'no "text" column (found: {found})')
    if len(table) == 0:
        raise DataError(path, "the file has no rows")
    if max_rows is not None and len(table) > max_rows:
        raise DataError(path, f"{len(table):,} rows; the limit is {max_rows:,}: split the file")
    cols = [c for c in COLUMNS if c in table.column_names]
    rows = []
    for no, row in enumerate(table.select_columns(cols).to_list(), 1):
        row = {c: _cell(row.get(c)) for c in COLUMNS}
        if row["text"] is None:
            raise DataError(path, 'the "text" cell is empty', _line(no, fmt))
        rows.append(row)
    return rows


def _load(path: Path, fmt: str):
    import datasets

    datasets.disable_progress_bars()
    logging.getLogger("datasets").setLevel(logging.ERROR)
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
        with tempfile.TemporaryDirectory(prefix="cott_table_") as cache:
            return datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache,
                                         keep_in_memory=True, **kwargs)
    except Exception as err:  # datasets raises many types for a malformed file; name the file and the cause
        if "corresponds to no data" in str(err):  # a header and nothing else
            raise DataError(path, "the file has no rows") from None
        cause = err.__cause__ or err
        raise DataError(path, f"could not be read as {fmt.upper()}: {type(cause).__name__}: {cause}"[:500]) from None


def _json_array(path: Path):
    import datasets

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise DataError(path, "a JSON file must be an array of objects, or one object per line")
    cols = [c for c in COLUMNS if any(c in d for d in data)]
    return datasets.Dataset.from_dict({c: [d.get(c) for d in data] for c in cols})


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # a step given as one label per slot
        value = " | ".join(str(v) for v in value)
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict) else str(value)
    return text if text.strip() else None


def _line(row: int, fmt: str) -> int:
    """The file line of a data row: CSV has a header line."""
    return row + 1 if fmt == "csv" else row
