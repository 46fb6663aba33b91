"""Reading uploaded batch files: the rows of a CSV, JSON-lines or JSON-array file, "text" and the file's own
columns (no Gradio, no datasets; a JSON array is read by ``cott.table.json_objects``, as the Experiment tab's
files are)."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from cott.table import json_objects

from .inputs import BATCH_MAX_ROWS, MAX_UPLOAD_BYTES, InputError


def upload_path(file) -> str:
    """The local path of an upload, whichever form the UI gives it in (a path, a file object or a dict)."""
    if not file:
        raise InputError('Upload a CSV (column "text") or JSON-lines ({"text": ...}) file first.')
    return file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")


def read_batch_file(path: str) -> list[dict]:
    """The rows of an uploaded CSV, JSON-lines or JSON-array file: dicts with "text" and the file's other columns;
    raises InputError."""
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB. Split it.")
    raw = Path(path).read_bytes()
    if b"\x00" in raw:
        raise InputError("The file looks binary; upload a UTF-8 CSV (column \"text\") or JSON-lines ({\"text\": ...}) file.")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"The file is not UTF-8 text (byte {err.start}); save it as UTF-8 CSV or JSON-lines.") from None
    if not content.strip():
        raise InputError("The file is empty.")
    suffix = Path(path).suffix.lower()
    head = content.lstrip()[:1]
    if head == "[" and suffix != ".csv":
        texts = _json_array(content)
    elif suffix in (".jsonl", ".ndjson", ".json") or (suffix != ".csv" and head == "{"):
        texts = _json_lines(content)
    else:
        texts = _csv_texts(content)
    if not texts:
        raise InputError("The file has no rows.")
    if len(texts) > BATCH_MAX_ROWS:
        raise InputError(f"The file has {len(texts):,} rows; the limit is {BATCH_MAX_ROWS:,}. Split it.")
    return texts


def _cell(value):
    """A JSON field as a table cell: text and numbers as they are, anything else as JSON."""
    return value if value is None or isinstance(value, (str, int, float)) else json.dumps(value, ensure_ascii=False)


def _json_row(d: dict) -> dict:
    return {"text": d["text"], **{str(k): _cell(v) for k, v in d.items() if k != "text"}}


def _json_array(content: str) -> list:
    try:
        data = json_objects(content)
    except ValueError as err:
        raise InputError(f"The file is not valid JSON ({err}).") from None
    except TypeError:
        data = None
    if data is None or not all("text" in d for d in data):
        raise InputError('Every item of the JSON array must be an object with a "text" field.')
    return [_json_row(d) for d in data]


def _json_lines(content: str) -> list:
    texts = []
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f'Line {n} is not valid JSON; each line must be like {{"text": "..."}}.') from None
        if not isinstance(row, dict) or "text" not in row:
            raise InputError(f'Line {n} has no "text" field; each line must be like {{"text": "..."}}.')
        texts.append(_json_row(row))
    return texts


def _csv_texts(content: str) -> list:
    try:
        reader = csv.reader(io.StringIO(content))
        header = next(reader, [])
        cols = [h.strip().lower() for h in header]
        if "text" not in cols:
            found = ", ".join(h.strip() for h in header[:8]) or "none"
            raise InputError(f'The CSV has no "text" column (found: {found}). Add a header row with a "text" column.')
        i = cols.index("text")
        names = [h.strip() or f"column {k}" for k, h in enumerate(header, 1)]
        return [{"text": row[i] if i < len(row) else "",
                 **{n: (row[k] if k < len(row) else "") for k, n in enumerate(names) if k != i}}
                for row in reader if row]
    except csv.Error as err:
        raise InputError(f"The CSV could not be read ({err}).") from None
