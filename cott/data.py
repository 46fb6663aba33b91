"""Dataset loaders: CLINC150, WOS (Data.txt TSV and HiAGM JSON lines), TACRED-layout relations, generic JSON lines,
CSV, Parquet or Hub datasets.

Every loader returns ``Examples``, Arrow rows memory-mapped from the datasets cache (``cott.examples``); a
malformed file raises ``DataError`` naming the file, the line and the problem.
"""
from __future__ import annotations

import csv
import json
import random
import re
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .examples import DataError, Example, Examples, collect
from .hub import load_hub
from .relation_input import mark_spans
from .table import file_examples

SPLITS = ("train", "val", "test")


def sample(examples: Sequence, n: int | None, seed: int = 0) -> Sequence:
    """A seeded random subset of ``n`` examples, in their original order (all of them when ``n`` is None or large),
    of the same kind as ``examples`` (``Examples`` or a list)."""
    if not n or n >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return examples[keep] if isinstance(examples, Examples) else [examples[i] for i in keep]


def _cached(parse: Callable[..., Iterator[Example]], *files: Path, **options) -> Examples:
    """The examples ``parse(*files, **options)`` yields, read from the cache unless a file or an option changed."""
    for f in files:
        if not f.is_file():
            raise DataError(f, "file not found")
    stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return collect(partial(parse, *files, **options), {"parse": parse.__qualname__, "files": stats, **options})


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno) from None


def _read_jsonl(path: Path):
    """Yield (line number, object) for each non-blank line."""
    with open(path, encoding="utf-8") as f:
        try:
            for no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", no) from None
                if not isinstance(obj, dict):
                    raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", no)
                yield no, obj
        except UnicodeDecodeError as err:
            raise DataError(path, f"not UTF-8 text ({err.reason})") from None


def _need(obj: dict, key: str, kind, path, line):
    if key not in obj:
        raise DataError(path, f"missing field {key!r}", line)
    if not isinstance(obj[key], kind):
        raise DataError(path, f"field {key!r} should be {getattr(kind, '__name__', kind)}, got {type(obj[key]).__name__}", line)
    return obj[key]


# ---- CLINC150 ---------------------------------------------------------------------------------
def load_clinc150(path: str | Path, split: str) -> Examples:
    """``path``: the folder with ``data_full.json`` and ``domains.json``, or a ``data_*.json`` beside ``domains.json``."""
    path = Path(path)
    data_file = path / "data_full.json" if path.is_dir() else path
    return _cached(_clinc150, data_file, data_file.parent / "domains.json", split=_split_name(split))


def _clinc150(data_file: Path, domains_file: Path, split: str) -> Iterator[Example]:
    data, domains = _read_json(data_file), _read_json(domains_file)
    if not isinstance(domains, dict):
        raise DataError(domains_file, "expected an object mapping each domain to its intents")
    parent = {intent: domain for domain, intents in domains.items() for intent in intents}
    if not isinstance(data, dict) or split not in data:
        raise DataError(data_file, f"no {split!r} split (keys: {sorted(data) if isinstance(data, dict) else '-'})")
    for i, row in enumerate(data[split]):
        if not (isinstance(row, list) and len(row) == 2 and all(isinstance(v, str) for v in row)):
            raise DataError(data_file, f"{split}[{i}] should be [text, intent]")
        text, intent = row
        if intent not in parent:
            raise DataError(data_file, f"{split}[{i}]: intent {intent!r} is not in {domains_file.name}")
        yield Example({"text": text}, (parent[intent],), intent)


def load_clinc150_out_of_scope(path: str | Path, split: str) -> list[str]:
    """The out-of-scope queries of a CLINC150 split (``oos_train``/``oos_val``/``oos_test``): never trained on."""
    path = Path(path)
    data_file = path / "data_full.json" if path.is_dir() else path
    data, key = _read_json(data_file), f"oos_{_split_name(split)}"
    if not isinstance(data, dict) or key not in data:
        raise DataError(data_file, f"no {key!r} split")
    return [row[0] for row in data[key] if isinstance(row, list) and row and isinstance(row[0], str)]


# ---- WOS ---------------------------------------------------------------------------------------
def load_wos(path: str | Path, split: str, seed: int = 0) -> Examples:
    """WOS in the HiAGM JSON-lines folder layout (``wos_{split}.json``) or the original ``Data.txt`` TSV.

    The TSV has no split: it is shuffled with ``seed`` and cut 64/16/20 into train/val/test.
    """
    path = Path(path)
    _split_name(split)
    if path.is_dir():
        return _cached(_wos_jsonl, path / f"wos_{split}.json")
    if path.suffix == ".json":
        return _cached(_wos_jsonl, path)
    return _cached(_wos_tsv, path, split=split, seed=seed)


def _wos_jsonl(path: Path) -> Iterator[Example]:
    for no, obj in _read_jsonl(path):
        text = _need(obj, "doc_token", str, path, no)
        labels = _need(obj, "doc_label", list, path, no)
        if len(labels) != 2 or not all(isinstance(v, str) for v in labels):
            raise DataError(path, "doc_label should be [domain, area]", no)
        yield Example({"text": text}, (labels[0].strip(),), labels[1].strip())


def _wos_tsv(path: Path, split: str, seed: int) -> Iterator[Example]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason})") from None
    if not rows:
        raise DataError(path, "empty file")
    header = [h.strip() for h in rows[0]]
    for col in ("Domain", "area", "Abstract"):
        if col not in header:
            raise DataError(path, f"header lacks column {col!r} (found {header})", 1)
    d, a, t = (header.index(c) for c in ("Domain", "area", "Abstract"))
    for no, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise DataError(path, f"expected {len(header)} tab-separated columns, found {len(row)}", no)
    order = list(range(1, len(rows)))  # the data rows, shuffled as the examples always were
    random.Random(seed).shuffle(order)
    n = len(order)
    cut = {"train": (0, int(0.64 * n)), "val": (int(0.64 * n), int(0.8 * n)), "test": (int(0.8 * n), n)}[split]
    for i in order[cut[0] : cut[1]]:
        yield Example({"text": rows[i][t].strip()}, (rows[i][d].strip(),), rows[i][a].strip())


# ---- TACRED layout -----------------------------------------------------------------------------
_TACRED_FILES = {"train": ("train",), "val": ("valid", "dev", "val"), "test": ("test",)}


def load_tacred(path: str | Path, split: str) -> Examples:
    """TACRED-layout relations (TACRED, TACREV, Re-TACRED, our CoNLL04): a ``.json`` list or ``.jsonl``.

    ``path`` is a file, or a folder holding ``{train,dev|valid,test}.json[l]``. The step is
    (subject type, object type); the answer is the relation.
    """
    path = Path(path)
    if path.is_dir():
        names = [f"{stem}{ext}" for stem in _TACRED_FILES[_split_name(split)] for ext in (".jsonl", ".json")]
        found = [path / n for n in names if (path / n).exists()]
        if not found:
            raise DataError(path, f"no {split} file (looked for {', '.join(names)})")
        path = found[0]
    return _cached(_tacred, path)


def _tacred(path: Path) -> Iterator[Example]:
    if path.suffix == ".jsonl":
        rows = _read_jsonl(path)
    else:
        data = _read_json(path)
        if not isinstance(data, list):
            raise DataError(path, "expected a JSON list of relation instances")
        rows = ((i + 1, obj) for i, obj in enumerate(data))  # "line" = item number in a JSON list
    for no, obj in rows:
        if not isinstance(obj, dict):
            raise DataError(path, "expected a JSON object", no)
        tokens = _need(obj, "token", list, path, no)
        spans = {k: _need(obj, k, int, path, no) for k in ("subj_start", "subj_end", "obj_start", "obj_end")}
        for side in ("subj", "obj"):
            s, e = spans[f"{side}_start"], spans[f"{side}_end"]
            if not 0 <= s <= e < len(tokens):
                raise DataError(path, f"{side} span [{s}, {e}] is outside the {len(tokens)} tokens", no)
        types = (_need(obj, "subj_type", str, path, no), _need(obj, "obj_type", str, path, no))
        relation = _need(obj, "relation", str, path, no)
        yield relation_example(tokens, spans, types, relation, meta={"id": obj.get("id")})


def relation_example(tokens, spans, types=None, relation=None, meta=None) -> Example:
    """An ``Example`` for a relation between two token spans (end inclusive, TACRED style); its ``marked`` field
    is the text with ``@ subject @`` and ``# object #``."""
    subj = " ".join(tokens[spans["subj_start"] : spans["subj_end"] + 1])
    obj = " ".join(tokens[spans["obj_start"] : spans["obj_end"] + 1])
    starts = [0]
    for t in tokens:
        starts.append(starts[-1] + len(t) + 1)  # character offsets in " ".join(tokens)
    text = " ".join(tokens)
    marked = mark_spans(text, *((starts[spans[f"{side}_start"]], starts[spans[f"{side}_end"] + 1] - 1) for side in ("subj", "obj")))
    fields = {"text": text, "subj": subj, "obj": obj, "marked": marked}
    return Example(fields, tuple(types) if types else None, relation, meta or {})


# ---- generic tables -----------------------------------------------------------------------------
TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")
GENERIC_COLUMNS = ("text", "step", "label")  # the generic task's columns (a table may hold more: cott.table)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?")  # "name" or "owner/name", optionally ":config"


def load_jsonl(path: str | Path, split: str, columns: dict[str, str] | str | None = None) -> Examples:
    """Generic classification: ``{"text", "step", "label"}`` per row (``step`` a string, "a | b" or a list for
    several slots) in JSON lines, CSV or Parquet (the last two read through ``datasets``), or a Hugging Face Hub
    dataset (``cott.hub``) when ``path`` is a string that names no local file or folder.

    ``path`` is a file, or a folder with ``{train,val,test}`` + ``.jsonl``, ``.csv`` or ``.parquet``. ``columns``
    maps our columns to the source's (``column_names``): ``{"text": "utterance"}`` or ``"text=utterance"``.
    """
    names, split = column_names(columns), _split_name(split)
    if is_hub_id(path):
        return load_hub(path, split, names)
    path = Path(path)
    if path.is_dir():
        found = [path / f"{split}{ext}" for ext in TABLE_SUFFIXES if (path / f"{split}{ext}").exists()]
        if not found:
            raise DataError(path, f"no {split} file (looked for {', '.join(split + e for e in TABLE_SUFFIXES)})")
        path = found[0]
    if path.suffix.lower() in (".csv", ".parquet"):
        return _cached(file_examples, path, columns=names)
    return _cached(_generic_jsonl, path, columns=names)


def _generic_jsonl(path: Path, columns: dict[str, str]) -> Iterator[Example]:
    for no, obj in _read_jsonl(path):
        text = _need(obj, columns["text"], str, path, no)
        label = _need(obj, columns["label"], str, path, no)
        step = _need(obj, columns["step"], (str, list), path, no)
        step = (step,) if isinstance(step, str) else tuple(step)
        if not step or not all(isinstance(s, str) and s for s in step):
            raise DataError(path, "step should be a non-empty string or a list of them", no)
        yield Example({"text": text}, step, label)


def column_names(columns: dict[str, str] | str | None = None) -> dict[str, str]:
    """Each generic column (``text``, ``step``, ``label``) -> its name in the source: ``columns``, a dict or
    ``"text=utterance,label=intent"``, over the same names. Raises ValueError for another column or a bad pair."""
    if isinstance(columns, str):
        pairs = [part.split("=") for part in columns.split(",") if part.strip()]
        if any(len(pair) != 2 or not all(s.strip() for s in pair) for pair in pairs):
            raise ValueError(f"columns {columns!r}: expected ours=theirs pairs such as text=utterance,label=intent")
        columns = {ours.strip(): theirs.strip() for ours, theirs in pairs}
    unknown = sorted(set(columns or {}) - set(GENERIC_COLUMNS))
    if unknown:
        raise ValueError(f"unknown column {', '.join(unknown)}: the generic task reads {', '.join(GENERIC_COLUMNS)}")
    return dict(zip(GENERIC_COLUMNS, GENERIC_COLUMNS)) | dict(columns or {})


def is_hub_id(path) -> bool:
    """A string that names no local file or folder and reads as a Hub dataset id (``name`` or ``owner/name``, with
    ``:config`` for a dataset's configuration)."""
    return (isinstance(path, str) and not Path(path).exists() and bool(_HUB_ID.fullmatch(path))
            and Path(path).suffix.lower() not in (*TABLE_SUFFIXES, ".json", ".tsv", ".txt"))
