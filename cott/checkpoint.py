"""Checkpoints: a directory with the masked LM (safetensors), the tokenizer, our heads and ``cott.json``.

``weights="full"`` stores the whole masked LM via ``save_pretrained``; ``weights="delta"`` stores only the
trained tensors (optionally in fp16) and takes the rest from the backbone named in ``cott.json``. Nothing
is ever loaded with pickle.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from .backbones import load_base_for_delta
from .config import CheckpointConfig
from .model import CoTTModel
from .template import Template
from .verbalizer import Verbalizer

logger = logging.getLogger(__name__)

CONFIG = "cott.json"
HEADS = "cott_heads.safetensors"
DELTA = "delta.safetensors"
FORMAT = "cott-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete or inconsistent."""


def save_checkpoint(model: CoTTModel, path: str | Path, meta: dict, weights: str = "full", dtype: str = "float32") -> Path:
    """Write ``model`` and ``meta`` (task, backbone, training config, metrics ...) to ``path``.

    Written to a temporary directory first and moved into place, so a crash never leaves half a checkpoint.
    """
    if weights not in ("full", "delta"):
        raise ValueError(f"weights must be 'full' or 'delta', not {weights!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        cast = getattr(torch, dtype)
        if weights == "full":
            mlm = model.mlm
            if hasattr(mlm, "merge_and_unload"):  # LoRA: store plain merged weights, loadable without peft
                mlm = copy.deepcopy(mlm).merge_and_unload()
            mlm.save_pretrained(tmp, safe_serialization=True)
        else:
            state = {n: p.detach().to(cast).contiguous().cpu() for n, p in model.mlm.named_parameters() if p.requires_grad}
            save_file(state, tmp / DELTA)
        model.tokenizer.save_pretrained(tmp)
        heads = {f"projection.{k}": v.contiguous().cpu() for k, v in model.projection.state_dict().items()}
        for name in ("classifier", "answer_soft", "step_soft"):
            module = getattr(model, name)
            if module is not None:
                heads.update({f"{name}.{k}": v.contiguous().cpu() for k, v in module.state_dict().items()})
        save_file(heads, tmp / HEADS)
        config = {
            "format": FORMAT,
            "version": VERSION,
            **meta,
            "template": model.template.text,
            "answer_head": model.answer_head,
            "answer_verbalizer": model.answer.to_dict(),
            "step_verbalizer": model.step.to_dict() if model.step is not None else None,
            "proj_dim": model.projection[-1].out_features,
            "soft_verbalizer": model.soft_verbalizer,
            "step_temperature": model.step_temperature,
            "weights": weights,
            "weights_dtype": dtype,
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def training_meta(task, method: str, answer_mode: str, backbone: str, max_length: int, training: dict,
                  hierarchy: dict | None = None, parent: tuple[str, dict] | None = None,
                  step_answers: dict | None = None) -> dict:
    """The ``meta`` of a trained model for ``save_checkpoint``: the task (a ``Task``), how the model answers, how it
    was trained (``training``: settings and command), a classification's label hierarchy, the step-answer table
    (``step_answers``) and, for a continued checkpoint (``parent``: its path and config), what trained the parent, a
    chain of continuations keeping every link.
    """
    meta = {"task": task.name, "kind": task.kind, "method": method, "answer_mode": answer_mode, "backbone": backbone,
            "max_length": max_length, "description": task.description, "training": training}
    if hierarchy is not None:
        meta["hierarchy"] = hierarchy
    if step_answers:  # step -> the answers the training data pairs with it: what "the answer follows the step" means
        meta["step_answers"] = step_answers
    if parent is not None:
        path, config = parent
        meta["init_from"] = {"path": path, "training": dict(config.training), "val": config.metrics.get("val")}
        if "init_from" in config.raw:
            meta["init_from"]["init_from"] = config.raw["init_from"]
    return meta


def read_config(path: str | Path) -> CheckpointConfig:
    """The typed config of the checkpoint at ``path``; CheckpointError naming the file and the problem."""
    record = _read_record(path)
    try:
        return CheckpointConfig.from_json(record)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{Path(path) / CONFIG}: {err}") from None


def _read_record(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint directory (it does not exist or is a file)")
    file = path / CONFIG
    if not file.exists():
        raise CheckpointError(f"{file}: missing; {path} is not a CoTT checkpoint")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not a CoTT checkpoint config (no \"format\": \"{FORMAT}\")")
    if record.get("version", 0) > VERSION:
        raise CheckpointError(f"{file}: format version {record['version']} is newer than this library ({VERSION})")
    return record


def update_config(path: str | Path, metrics: dict | None = None, **changes) -> CheckpointConfig:
    """Change a checkpoint's ``cott.json`` in place and return its new config: ``metrics`` adds readings under their
    names (the others are kept), ``changes`` sets top-level keys. The file is replaced atomically."""
    record = _read_record(path) | changes
    if metrics:
        record["metrics"] = (record.get("metrics") or {}) | metrics
    file = Path(path) / CONFIG
    try:  # a change that would make the checkpoint unreadable is refused, the file left as it was
        config = CheckpointConfig.from_json(record)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{file}: {err}") from None
    tmp = file.with_name(f".{CONFIG}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, file)
    return config


def command_line(module: str, argv: list[str] | None = None) -> str:
    """``python -m MODULE ARGS``, shell-quoted, as checkpoints and results record the command that made them."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.exists():
        raise CheckpointError(f"{file}: missing")
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file}: unreadable safetensors file, truncated or corrupt ({err})") from None


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> tuple[CoTTModel, CheckpointConfig]:
    """Load a checkpoint directory written by ``save_checkpoint``; returns the model and its typed config."""
    path = Path(path)
    config = read_config(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as err:
        raise CheckpointError(f"{path}: tokenizer files missing or unreadable ({err})") from None
    if config.weights == "full":
        weights = path / "model.safetensors"
        if not weights.exists():
            raise CheckpointError(f"{weights}: missing (the checkpoint's masked LM)")
        _load_tensors(weights)  # a clear error for a truncated file before transformers sees it
        mlm = AutoModelForMaskedLM.from_pretrained(path, use_safetensors=True)
    elif config.weights == "delta":
        delta = _load_tensors(path / DELTA)
        mlm, fresh = load_base_for_delta(config.backbone)
        if fresh - delta.keys():
            raise CheckpointError(f"{path / DELTA}: lacks {sorted(fresh - delta.keys())}, which the backbone "
                                  f"{config.backbone!r} does not have either: the checkpoint is incomplete")
        params = dict(mlm.named_parameters())
        for name, tensor in delta.items():
            if name not in params:
                raise CheckpointError(f"{path / DELTA}: tensor {name!r} is not in the backbone {config.backbone!r}")
            if params[name].shape != tensor.shape:
                raise CheckpointError(
                    f"{path / DELTA}: tensor {name!r} has shape {tuple(tensor.shape)}, the backbone has {tuple(params[name].shape)}"
                )
            with torch.no_grad():
                params[name].copy_(tensor.to(params[name].dtype))
    else:
        raise CheckpointError(f"{path / CONFIG}: unknown weights kind {config.weights!r}")
    step = Verbalizer.from_dict(config.step_verbalizer) if config.step_verbalizer else None
    model = CoTTModel(
        mlm,
        tokenizer,
        Template(config.template),
        Verbalizer.from_dict(config.answer_verbalizer),
        step,
        answer_head=config.answer_head,
        proj_dim=config.proj_dim,
        soft_verbalizer=config.soft_verbalizer,
    )
    model.step_temperature = config.step_temperature
    heads = _load_tensors(path / HEADS)
    try:
        for name in ("projection", "classifier", "answer_soft", "step_soft"):
            module = getattr(model, name)
            if module is not None:
                module.load_state_dict({k[len(name) + 1 :]: v for k, v in heads.items() if k.startswith(name + ".")})
    except RuntimeError as err:
        raise CheckpointError(f"{path / HEADS}: does not match {CONFIG} ({str(err).splitlines()[0]} ...)") from None
    model.to(device or "cpu").eval()
    return model, config
