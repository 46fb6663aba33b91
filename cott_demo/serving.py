"""Loading and serving the checkpoints: the model registry, the micro-batcher, and the only functions that touch the
accelerator.

Concurrent requests are served in batches (COTT_BATCHING=0 turns it off): each model has a thread and a queue; the
thread takes the first waiting request, collects more for up to COTT_BATCH_WAIT_MS milliseconds or up to
COTT_BATCH_MAX texts, runs them as one pipeline call and hands each request its own predictions. While a batch runs
the next one gathers, so under load batches form without waiting; a request alone (nothing else in flight for its
model) runs at once in its own thread, as without batching. The batched forward (``forward_batch``,
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
import contextvars
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from cott import CoTTPipeline

from .inputs import InputError, clean_text

logger = logging.getLogger("cott.app")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINTS = [str(ROOT / "assets" / "clinc150"), str(ROOT / "assets" / "conll04")]
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
# Seconds asked of ZeroGPU per call. The slowest calls are a full batch that fails and is re-run one request at a
# time (33 forwards of <= 32 texts of a MiniLM) and a batched sweep (8 texts x 16 steps): 1.5 s and 2.3 s on the
# shared 2-core CPU, far less on a GPU slice, plus the first call's move of the weights; ZeroGPU queues short first.
GPU_DURATION = int(os.environ.get("COTT_GPU_DURATION", "20"))


def _default_concurrency() -> int:
    if BATCHING:  # every waiting request can join a batch: Gradio's worker threads (40) are the real bound
        return 40
    return 4 if ZERO_GPU or torch.cuda.is_available() else 2  # one forward per request: about the hardware's width


# Events in flight at once (Gradio queue's default_concurrency_limit). With batching the batcher, not this, decides
# how many forwards run; without it, each request runs its own forward.
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
        _PIPELINES[spec] = CoTTPipeline.from_pretrained(spec, device=serving_device())
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


# ---- the micro-batcher ------------------------------------------------------------------------------------------
@dataclass
class _Job:
    requests: list
    size: int  # inputs in all its requests
    context: contextvars.Context
    future: Future = field(default_factory=Future)
    queued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Groups concurrent jobs (lists of requests) into calls of ``run(requests) -> one outcome per request``.

    One thread per batcher: it takes the oldest job, adds jobs that are waiting or arrive until ``wait_s`` after that
    job was queued or until ``max_items`` inputs (a job never split; a larger one runs alone), makes one ``run`` call
    and gives each job its outcomes. The call runs in the context of the job that opened the batch (Gradio's request,
    which ZeroGPU reads to charge the GPU time to that visitor). If ``run`` itself raises, every job in the batch gets
    the exception. One ``run`` at a time: ``call`` runs a job in the caller's own thread, with no hand-off and no
    wait, when it is the only one in flight and no batch is running (a lone user is served as without batching);
    jobs arriving meanwhile gather for the next batch.
    """

    def __init__(self, run: Callable[[list], list], max_items: int, wait_s: float, name: str = "cott-batcher"):
        self.run, self.max_items, self.wait_s = run, max_items, wait_s
        self.calls = 0  # run calls made, and requests served (for the tests and the benchmark)
        self.served = 0
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._carry: _Job | None = None
        self._running = threading.Lock()  # held by whoever runs a call (the thread, or a lone caller)
        self._lock = threading.Lock()
        self._in_flight = 0  # jobs inside ``call``
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, requests: list, size: int | None = None) -> Future:
        """Queue a job; its future's result is the list of outcomes, one per request."""
        size = sum(len(r[0]) if isinstance(r, tuple) else 1 for r in requests) if size is None else size
        job = _Job(list(requests), size, contextvars.copy_context())
        self._queue.put(job)
        return job.future

    def call(self, requests: list, size: int | None = None) -> list:
        """The outcomes of a job (one per request): at once in this thread when it is alone, else batched."""
        with self._lock:
            self._in_flight += 1
            alone = self._in_flight == 1
        try:
            if alone and self._running.acquire(blocking=False):
                try:
                    return self.run(list(requests))
                finally:
                    self._count(len(requests))
                    self._running.release()
            return self.submit(requests, size).result()
        finally:
            with self._lock:
                self._in_flight -= 1

    def _count(self, requests: int) -> None:
        with self._lock:
            self.calls += 1
            self.served += requests

    def _collect(self) -> list[_Job]:
        first = self._carry or self._queue.get()
        self._carry = None
        batch, n = [first], first.size
        deadline = first.queued + self.wait_s
        while n < self.max_items:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if n + job.size > self.max_items:
                self._carry = job  # the next batch's first
                break
            batch.append(job)
            n += job.size
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._collect()
            requests = [r for job in batch for r in job.requests]
            try:
                with self._running:
                    outcomes = batch[0].context.run(self.run, requests)
                if len(outcomes) != len(requests):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(requests)} requests")
            except BaseException as err:  # the call itself failed (e.g. no GPU to be had): every caller hears it
                for job in batch:
                    job.future.set_exception(err)
                if not isinstance(err, Exception):
                    raise
                continue
            finally:
                self._count(len(requests))
            k = 0
            for job in batch:
                job.future.set_result(outcomes[k : k + len(job.requests)])
                k += len(job.requests)


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
        outcomes = forward(spec, [([r["text"]], None) for r in chunk]) if chunk else []  # one request per row
        for r, out in zip(chunk, outcomes):
            if isinstance(out, Failure):  # isolated: the other rows keep their predictions
                r["note"] = f"error: {out.message}"
                continue
            p = out[0]
            conf = p.p_rectified[p.labels.index(p.answer)]
            flags = []
            if p.step_prob is not None and p.step_prob < threshold:
                flags.append("low step prob")
            if conf < threshold:
                flags.append("low answer confidence")
            if p.out_of_scope:  # the checkpoint's fitted out-of-scope signal flags it
                flags.append("out of scope")
            r.update(step=p.step, step_prob=p.step_prob, answer=p.answer, confidence=conf, flag="⚠ " + ", ".join(flags) if flags else "")
    if progress is not None:
        progress(1.0, desc="done")
    return rows
