"""The generic task's examples from a Hugging Face Hub dataset: its splits as ours, its columns named as ours.

``owner/name:config`` names a dataset's configuration. The Hub split ``validation`` (or ``val``, ``dev``) is our ``val``;
``train`` and ``test`` keep their names. An unreachable Hub fails within seconds (one connection attempt). The rows
are checked as a CSV's are (``cott.table``) and cached as every loader's are (``cott.examples``). No dataset code
from the Hub is ever run (no ``trust_remote_code``): a dataset of data files only.
"""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from .examples import DataError, Examples, cache_dir, collect, quiet
from .table import checked, table_examples

HUB_SPLITS = {"train": ("train",), "val": ("validation", "val", "dev"), "test": ("test",)}
_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
REACH_SECONDS = 3.0  # how long one connection to the Hub may take before the data is said to be unreachable


def load_hub(name: str, split: str, columns: dict[str, str]) -> Examples:
    """Our ``split`` of the Hub dataset ``name`` with ``columns`` (ours -> the dataset's): a ``DataError`` says
    whether the Hub is offline, unreachable or has no such dataset, split or column."""
    import datasets

    quiet()
    repo, _, config = name.partition(":")
    if not _offline() and not _reachable():
        raise DataError(name, f"not a local file or folder, and the Hugging Face Hub ({_endpoint()}) could not be "
                              f"reached within {REACH_SECONDS:g} s: check the network, or set HF_HUB_OFFLINE=1 to read "
                              "a cached copy")
    try:
        splits = datasets.load_dataset(repo, **({"name": config} if config else {}), cache_dir=cache_dir())
    except Exception as err:  # datasets raises many types; say which of the usual causes it is
        raise DataError(name, _why(err)) from None
    found = [s for s in HUB_SPLITS[split] if s in splits]
    if not found:
        raise DataError(name, f"no {split} split on the Hub (looked for {', '.join(HUB_SPLITS[split])}; "
                              f"it has {', '.join(splits) or 'none'})")
    where = f"{name} [{found[0]}]"
    table = checked(splits[found[0]], where, columns)
    key = {"hub": name, "split": found[0], "fingerprint": table._fingerprint, "columns": columns}
    return collect(lambda: table_examples(table, where, unit="row"), key)


def _why(err: Exception) -> str:
    """Why ``load_dataset`` failed, for a name that is not a local path either."""
    from datasets.exceptions import DatasetNotFoundError

    cause = f"{type(err).__name__}: {err}"[:300]
    if _offline():
        return (f"not a local file or folder, and the Hugging Face Hub is offline ({' / '.join(_OFFLINE)} is set) "
                f"with no cached copy of this dataset ({cause})")
    if isinstance(err, DatasetNotFoundError):
        return f"neither a local file or folder nor a dataset on the Hugging Face Hub ({cause})"
    if isinstance(err, (ConnectionError, TimeoutError)):
        return f"not a local file or folder, and the Hugging Face Hub could not be reached ({cause})"
    return f"not a local file or folder, and loading it from the Hugging Face Hub failed ({cause})"


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _reachable() -> bool:
    """One TCP connection to the Hub's endpoint within ``REACH_SECONDS``."""
    url = urlparse(_endpoint())
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), REACH_SECONDS).close()
        return True
    except OSError:
        return False


def _offline() -> bool:
    import datasets

    env = (os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in _OFFLINE)
    return bool(datasets.config.HF_HUB_OFFLINE) or any(env)
