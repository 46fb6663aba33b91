"""A micro-batcher: concurrent requests grouped into one call, each caller given its own outcomes."""
from __future__ import annotations

import contextvars
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable


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
