"""Loading and serving the checkpoints: the model registry, batched forwards, the only code that touches the accelerator.

Concurrent requests are served in batches (COTT_BATCHING=0 turns it off): each model has a thread and a queue; the
thread takes the first waiting request, collects more for up to COTT_BATCH_WAIT_MS milliseconds or up to
COTT_BATCH_MAX texts, runs them as one pipeline call and hands each request its own predictions. While a batch runs
the next one gathers; a request alone runs at once in its own thread, as without batching. The batched forward (``forward_batch``,
``sweep_batch``) is the function under ``spaces.GPU`` on ZeroGPU: one GPU call serves a whole batch, and it takes and
returns plain picklable data (a checkpoint spec, lists of texts and steps; Predictions, Sweeps and ``Failure``s).
A request whose input the pipeline refuses fails alone: when a batch raises, its requests are run one by one inside
the same call, and each bad one gets a ``Failure`` that is raised again, as the same exception, to its caller only.

ZeroGPU, as the Spaces documentation describes it: ``spaces`` is imported before anything touches CUDA (app.py imports
it first, and so does this module); the main process never initialises CUDA (no ``torch.cuda`` query at import;
``serving_device`` answers "cuda" on ZeroGPU without asking torch); models are placed with ``.to("cuda")`` at load,
which ``spaces`` turns into a deferred move onto the GPU that each decorated call is lent. Elsewhere ``spaces.GPU``
is a no-op: CPU Spaces and local runs load on CPU (or on a dedicated GPU) and call the same functions in-process.
"""
from __future__ import annotations

try:  # ZeroGPU on Hugging Face Spaces: before torch, so that it can patch torch before CUDA is touched; a no-op elsewhere
    import spaces
except ImportError:  # pragma: no cover - depends on the environment
    spaces = None

import builtins
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from cott import CoTTPipeline

from .batcher import MicroBatcher
from .inputs import InputError

logger = logging.getLogger("cott.app")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINTS = [str(ROOT / "assets" / name) for name in ("clinc150", "clinc150-following", "conll04")]
EXAMPLES_FILE = ROOT / "assets" / "examples.json"
BATCH_SIZE = 32  # texts per forward inside the pipeline, and rows per chunk of a batch file


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() not in {"0", "false", "no", "off", ""}


# On ZeroGPU (the same test as spaces' own Config.zero_gpu). Read from the environment, never from torch.cuda.
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in {"1", "t", "true"}
BATCHING = _flag("COTT_BATCHING", "1")
BATCH_MAX = max(1, int(os.environ.get("COTT_BATCH_MAX", "32")))  # texts per batch (a larger single request runs alone)
BATCH_WAIT_MS = max(0.0, float(os.environ.get("COTT_BATCH_WAIT_MS", "5")))  # how long a batch waits to fill
SWEEP_BATCH_MAX = max(1, int(os.environ.get("COTT_SWEEP_BATCH_MAX", "8")))  # texts per batched sweep (x every step)
QUANTIZE = os.environ.get("COTT_QUANTIZE", "").strip() or None  # "int8": the encoder in dynamic int8, CPU only
# Seconds asked of ZeroGPU per call: the slowest calls (a failed batch re-run one by one, a sweep of 8 texts x 16 steps)
# take 1.5-2.3 s on the shared 2-core CPU, far less on a GPU slice, plus the first move of the weights.
GPU_DURATION = int(os.environ.get("COTT_GPU_DURATION", "20"))


def _default_concurrency() -> int:
    if BATCHING:  # every waiting request can join a batch: Gradio's worker threads (40) are the real bound
        return 40
    return 4 if ZERO_GPU or torch.cuda.is_available() else 2  # one forward per request: about the hardware's width


# Events in flight at once (the queue's default_concurrency_limit); with batching the batcher decides the forwards.
CONCURRENCY = int(os.environ.get("COTT_CONCURRENCY") or _default_concurrency())


def gpu(fn: Callable) -> Callable:
    """``spaces.GPU(duration=GPU_DURATION)`` when ``spaces`` imports (it returns ``fn`` itself off ZeroGPU)."""
    if spaces is None:  # pragma: no cover - depends on the environment
        return fn
    return spaces.GPU(duration=GPU_DURATION)(fn)


def serving_device() -> str:
    """Where a loaded model is placed: COTT_DEVICE if set; "cuda" on ZeroGPU (spaces defers the move to each GPU
    call, no CUDA in this process); else "cuda" on a machine with a GPU, "cpu" without."""
    if os.environ.get("COTT_DEVICE"):
        return os.environ["COTT_DEVICE"]
    if ZERO_GPU:
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


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
    """Load a checkpoint once per process, on ``serving_device()``."""
    if spec not in _PIPELINES:
        _PIPELINES[spec] = CoTTPipeline.from_pretrained(spec, device=serving_device(), quantize=QUANTIZE)
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


# ---- the batched forward: what runs on the accelerator ----------------------------------------------------------
Request = tuple  # (texts, steps): a list of inputs, and None or one step (None = Î) per input


@dataclass
class Failure:
    """A request the pipeline refused, as plain data: the exception's class name and message."""

    kind: str
    message: str

    @classmethod
    def of(cls, err: BaseException) -> "Failure":
        return cls(type(err).__name__, str(err))

    def exception(self) -> Exception:
        """The exception to raise to the caller: the same class for ours and the builtins, else a RuntimeError."""
        known = {"InputError": InputError}.get(self.kind) or getattr(builtins, self.kind, None)
        if isinstance(known, type) and issubclass(known, Exception):
            return known(self.message)
        return RuntimeError(f"{self.kind}: {self.message}")


def _failed(err: Exception) -> Failure:
    if not isinstance(err, (ValueError, TypeError)):  # not a bad input: keep the traceback in the log
        logger.warning("a request failed", exc_info=err)
    return Failure.of(err)


def _predict(pipe: CoTTPipeline, texts: list, steps: list | None) -> list:
    """One pipeline call, as the unbatched path makes it (``step=None`` when no input injects a step)."""
    steps = list(steps) if steps is not None and any(s is not None for s in steps) else None
    return pipe(list(texts), step=steps, batch_size=BATCH_SIZE)


def _predict_one(pipe: CoTTPipeline, request: Request) -> list | Failure:
    try:
        return _predict(pipe, *request)
    except Exception as err:  # this request's outcome, never its batch-mates'
        return _failed(err)


@gpu
def forward_batch(spec: str, requests: list[Request]) -> list[list | Failure]:
    """Predictions for several requests in one pipeline call: one outcome per request, a list of Predictions (one
    per input) or a Failure. If the call raises, each request is run alone, here (one GPU call all the same)."""
    pipe = load_pipeline(spec)
    outcomes: list = [None] * len(requests)
    ok = []
    for i, (texts, steps) in enumerate(requests):
        if steps is not None and len(steps) != len(texts):  # never merge a request whose steps do not line up
            outcomes[i] = Failure("ValueError", "give one step per input")
        else:
            ok.append(i)
    if len(ok) > 1:
        texts = [t for i in ok for t in requests[i][0]]
        steps = [s for i in ok for s in (requests[i][1] or [None] * len(requests[i][0]))]
        try:
            preds = _predict(pipe, texts, steps)
        except Exception:  # one bad request (or more): every request alone below, to find which
            pass
        else:
            k = 0
            for i in ok:
                n = len(requests[i][0])
                outcomes[i], k = preds[k : k + n], k + n
            return outcomes
    for i in ok:
        outcomes[i] = _predict_one(pipe, requests[i])
    return outcomes


def _sweep_one(pipe: CoTTPipeline, text) -> object:
    try:
        return pipe.sweep(text)
    except Exception as err:
        return _failed(err)


@gpu
def sweep_batch(spec: str, texts: list) -> list:
    """``pipe.sweep`` of several texts in one call: one Sweep or Failure per text (each alone if the call raises)."""
    pipe = load_pipeline(spec)
    if len(texts) > 1:
        try:
            return pipe.sweep(list(texts))
        except Exception:
            pass
    return [_sweep_one(pipe, t) for t in texts]


_BATCHERS: dict[tuple[str, str], MicroBatcher] = {}
_BATCHERS_LOCK = threading.Lock()


def batcher(kind: str, spec: str) -> MicroBatcher:
    """The batcher of one model for "predict" (forward_batch) or "sweep" (sweep_batch), started on first use."""
    with _BATCHERS_LOCK:
        if (kind, spec) not in _BATCHERS:
            if kind == "predict":
                run, most = (lambda requests: forward_batch(spec, requests)), BATCH_MAX
            else:
                run, most = (lambda texts: sweep_batch(spec, texts)), SWEEP_BATCH_MAX
            _BATCHERS[kind, spec] = MicroBatcher(run, most, BATCH_WAIT_MS / 1000, name=f"cott-{kind}-{Path(spec).name}")
        return _BATCHERS[kind, spec]


def forward(spec: str, requests: list[Request]) -> list:
    """Outcomes of several requests: through the model's batcher (COTT_BATCHING, default on), else one call now."""
    if BATCHING:
        return batcher("predict", spec).call(requests)
    return forward_batch(spec, requests)


def _unwrap(outcome):
    if isinstance(outcome, Failure):
        raise outcome.exception()
    return outcome


def run_predict(spec: str, texts: list[str], steps: list[str | None] | None = None) -> list:
    """Predictions for ``texts`` (one step per text, or None = Î); raises what the pipeline raised for them."""
    (outcome,) = forward(spec, [(list(texts), None if steps is None else list(steps))])
    return _unwrap(outcome)


def run_sweep(spec: str, text: str):
    """The sweep of one text over every known step, batched with concurrent sweeps of the same model."""
    if BATCHING:
        (outcome,) = batcher("sweep", spec).call([text], 1)
    else:
        (outcome,) = sweep_batch(spec, [text])
    return _unwrap(outcome)


@gpu
def run_counterfactuals(spec: str, inputs: list, policy: str, **kwargs) -> list:
    """One chunk of an Experiment tab's rows: ``CoTTPipeline.counterfactuals`` (its own event, not batched)."""
    return load_pipeline(spec).counterfactuals(inputs, policy, **kwargs)
