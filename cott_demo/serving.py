"""Loading and serving the checkpoints: the model registry, and the only functions that touch the accelerator."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cott import CoTTPipeline

from .inputs import InputError, clean_text

logger = logging.getLogger("cott.app")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINTS = [str(ROOT / "assets" / "clinc150"), str(ROOT / "assets" / "conll04")]
EXAMPLES_FILE = ROOT / "assets" / "examples.json"
BATCH_SIZE = 32
CONCURRENCY = int(os.environ.get("COTT_CONCURRENCY", "4" if torch.cuda.is_available() else "2"))

try:  # ZeroGPU on Hugging Face Spaces; a no-op elsewhere.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - depends on the environment

    def gpu(fn):
        return fn


_PIPELINES: dict[str, CoTTPipeline] = {}


@dataclass
class Model:
    """One configured checkpoint: its pipeline, or why it could not be loaded."""

    name: str
    spec: str
    pipe: CoTTPipeline | None = None
    error: str | None = None
    card: dict = field(default_factory=dict)


def load_pipeline(spec: str) -> CoTTPipeline:
    """Load a checkpoint once per process (on GPU when there is one)."""
    if spec not in _PIPELINES:
        _PIPELINES[spec] = CoTTPipeline.from_pretrained(spec)
    return _PIPELINES[spec]


def configured_checkpoints() -> list[str]:
    """COTT_CHECKPOINTS (comma-separated dirs or hub ids), else the shipped checkpoints in assets/."""
    env = os.environ.get("COTT_CHECKPOINTS", "")
    specs = [s.strip() for s in env.split(",") if s.strip()]
    return specs or DEFAULT_CHECKPOINTS


def load_models(specs: list[str]) -> dict[str, Model]:
    """Name -> Model for every spec; a broken checkpoint becomes a Model with an error, never an exception."""
    models: dict[str, Model] = {}
    for spec in specs:
        base = Path(spec.rstrip("/")).name or spec
        name, n = base, 2
        while name in models:
            name, n = f"{base} ({n})", n + 1
        try:
            pipe = load_pipeline(spec)
            models[name] = Model(name, spec, pipe, card=pipe.card())
        except Exception as err:  # any failure to load is shown in the UI, not raised
            logger.warning("could not load checkpoint %s: %s", spec, err)
            models[name] = Model(name, spec, error=f"{type(err).__name__}: {err}")
    return models


def load_examples(models: dict[str, Model], examples: dict | str | Path | None = None) -> dict[str, list[str]]:
    """Model name -> example texts, matched by the checkpoint's task (or the model's name)."""
    if examples is None or isinstance(examples, (str, Path)):
        try:
            examples = json.loads(Path(examples or EXAMPLES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("no examples: %s", err)
            examples = {}
    out = {}
    for name, m in models.items():
        keys = (m.card.get("task"), name)
        out[name] = next((list(examples[k]) for k in keys if k in examples), [])
    return out


def usable(models: dict[str, Model], name) -> Model:
    """The model called ``name``, loaded; raises InputError for an unknown or broken one."""
    if name not in models:
        raise InputError(f"Unknown model {name!r}; choose one of: {', '.join(models)}.")
    m = models[name]
    if m.pipe is None:
        raise InputError(f"The model {name!r} could not be loaded ({m.error}). Choose another one.")
    return m


@gpu
def run_predict(spec: str, texts: list[str], steps: list[str | None] | None = None) -> list:
    return load_pipeline(spec)(texts, step=steps, batch_size=BATCH_SIZE)


@gpu
def run_sweep(spec: str, text: str):
    return load_pipeline(spec).sweep(text)


def predict_rows(spec: str, texts: list[str], threshold: float, progress=None) -> list[dict]:
    """Run the pipeline over rows in batches; a bad row gets an error note instead of failing the file."""
    rows = []
    for start in range(0, len(texts), BATCH_SIZE):
        if progress is not None:
            progress(start / len(texts), desc=f"rows {start + 1}–{min(start + BATCH_SIZE, len(texts))} of {len(texts)}")
        chunk = []
        for k, t in enumerate(texts[start : start + BATCH_SIZE], start + 1):
            row = {"row": k, "text": t if isinstance(t, str) else json.dumps(t), "note": ""}
            try:
                row["text"], notes = clean_text(t)
                row["note"] = " ".join(notes)
                chunk.append(row)
            except InputError:
                row["note"] = "error: empty text"
            rows.append(row)
        try:
            preds = run_predict(spec, [r["text"] for r in chunk]) if chunk else []
        except (ValueError, TypeError):  # isolate the bad rows
            preds = []
            for r in chunk:
                try:
                    preds.append(run_predict(spec, [r["text"]])[0])
                except (ValueError, TypeError) as err:
                    preds.append(None)
                    r["note"] = f"error: {err}"
        for r, p in zip(chunk, preds):
            if p is None:
                continue
            conf = p.p_rectified[p.labels.index(p.answer)]
            flags = []
            if p.step_prob is not None and p.step_prob < threshold:
                flags.append("low step prob")
            if conf < threshold:
                flags.append("low answer confidence")
            r.update(step=p.step, step_prob=p.step_prob, answer=p.answer, confidence=conf, flag="⚠ " + ", ".join(flags) if flags else "")
    if progress is not None:
        progress(1.0, desc="done")
    return rows
