"""The demo's limits on user input, and the check of a text box (pure Python)."""
from __future__ import annotations

import os
import re

MAX_CHARS = 2_000  # longer texts are truncated, with a notice
MAX_STEP_CHARS = 200
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
BATCH_MAX_ROWS = 1_000  # rows of one Batch-tab file (an Experiment's: experiment.EXPERIMENT_MAX_ROWS)
DEFAULT_THRESHOLD = float(os.environ.get("COTT_MONITOR_THRESHOLD", "0.5"))
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


class InputError(ValueError):
    """Bad user input, shown to the user as it is."""


def clean_text(text, limit: int = MAX_CHARS, what: str = "text") -> tuple[str, list[str]]:
    """Validate a text box: returns the text (truncated to ``limit``) and notices for the user."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be a string.")
    text = text.replace("\x00", "")
    if not text.strip():
        raise InputError(f"The {what} is empty: type something first (or click an example).")
    notices = []
    if len(text) > limit:
        notices.append(f"The {what} had {len(text):,} characters; only the first {limit:,} were used.")
        text = text[:limit]
    if _HTML_TAG.search(text):
        notices.append(f"The {what} contains HTML tags: they are read as plain text, never rendered.")
    return text, notices


def monitor_threshold(value) -> float:
    """The monitor threshold from the slider (the default when it sends none)."""
    return DEFAULT_THRESHOLD if value is None else float(value)


CUT_NOTE = "text cut: longer than the model reads, only part of it was used"  # a Batch or Experiment row's note


def cut_notice(max_length: int) -> str:
    """What the Ask tab says when the model's max length cut the text."""
    return (f"The text is longer than this model reads ({max_length} tokens): only part of it was used (the start, "
            "or for a relation the words around the marked pair).")
