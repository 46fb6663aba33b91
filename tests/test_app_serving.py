"""Serving the demo: concurrent requests batched into one pipeline call (the same predictions as one at a time, a bad
input failing alone), what crosses the ZeroGPU boundary pickles as plain data, the main process never touches CUDA on
ZeroGPU, and the app run as a Space runs it (``python app.py`` with the ``spaces`` package imported first) answers
every endpoint through gradio_client."""
from __future__ import annotations

import math
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import pytest

from app_tiny import ROOT, free_port, tiny_checkpoints

from cott import CoTTPipeline
from cott.pipeline import Prediction, Sweep
from cott_demo import serving
from cott_demo.batcher import MicroBatcher
from cott_demo.rows import predict_rows

TOL = 1e-6
CLS_TEXTS = ["what is my balance", "book a flight to paris", "set a timer for ten minutes please",
             "how is the weather in london", "transfer money to my account", "set an alarm"]
REL_TEXTS = ["[[Ada]] works for {{Acme}} in Paris.", "[[Acme Ltd]] is based in {{London}}.",
             "[[Ada Lovelace]] lives in {{London}}.", "[[Ada]] met {{Lovelace}} at the trip."]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    dirs, examples = tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))
    return {"cls": dirs[0], "rel": dirs[1], "dirs": dirs, "examples": examples}


@pytest.fixture
def calls(monkeypatch):
    """Every pipeline call, as (inputs, step), from whichever thread makes it."""
    seen, call, lock = [], CoTTPipeline.__call__, threading.Lock()

    def spy(self, inputs, step=None, **kw):
        with lock:
            seen.append((inputs, step))
        return call(self, inputs, step=step, **kw)

    monkeypatch.setattr(CoTTPipeline, "__call__", spy)
    return seen


@pytest.fixture
def fresh_batchers(monkeypatch):
    """Batchers made for this test only, waiting ``wait_ms`` for a batch to fill (so that threads started together
    meet in one batch even on a busy machine)."""
    made = []

    def make(wait_ms=300.0, batch_max=None):
        monkeypatch.setattr(serving, "BATCHING", True)
        monkeypatch.setattr(serving, "BATCH_WAIT_MS", wait_ms)
        if batch_max:
            monkeypatch.setattr(serving, "BATCH_MAX", batch_max)
        monkeypatch.setattr(serving, "_BATCHERS", {})
        made.append(serving._BATCHERS)
        return serving._BATCHERS

    return make


def assert_same(a, b, tol=TOL):
    """Two Predictions (or Sweeps): equal strings and flags, floats within ``tol``."""
    assert type(a) is type(b)
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) or (isinstance(x, list) and x and isinstance(x[0], (float, list))):
            flat_x, flat_y = flatten(x), flatten(y)
            assert len(flat_x) == len(flat_y), f.name
            assert all(math.isclose(u, v, rel_tol=0, abs_tol=tol) for u, v in zip(flat_x, flat_y)), f.name
        else:
            assert x == y, f.name


def close(a, b, tol=TOL) -> bool:
    """Equal JSON-like values, floats within ``tol``."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    return a == b


def flatten(x):
    if isinstance(x, list):
        return [v for item in x for v in flatten(item)]
    return [x]


def mixed_requests(kind):
    """Requests as the app makes them: a prediction, an injection (Î beside a known step, or free text), several texts."""
    if kind == "cls":
        t = CLS_TEXTS
        return [([t[0]], None), ([t[1], t[1]], [None, "banking"]), ([t[2]], None), ([t[3], t[3]], [None, "money trip"]),
                (t[4:6], None), ([t[5], t[2]], ["utility", None])]
    t = REL_TEXTS
    return [([t[0]], None), ([t[1], t[1]], [None, "location | person"]), (t[2:4], None),
            ([t[3], t[3]], [None, "organization | organization"])]


# ---- batched = one at a time ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cls", "rel"])
def test_batched_forward_equals_one_request_at_a_time(ckpts, calls, kind):
    spec, requests = ckpts[kind], mixed_requests(kind)
    batched = serving.forward_batch(spec, requests)
    assert len(calls) == 1  # one pipeline call for the whole batch
    assert sum(len(texts) for texts, _ in requests) == len(calls[0][0])
    pipe = serving.load_pipeline(spec)
    for (texts, steps), out in zip(requests, batched):
        alone = pipe(texts, step=steps)
        assert len(out) == len(alone) == len(texts)
        for a, b in zip(out, alone):
            assert_same(a, b)
    # Step injection really differs from Î here, so a mix-up of rows could not pass unseen.
    assert batched[1][0].step != batched[1][1].step
    assert max(abs(u - v) for u, v in zip(batched[0][0].p_rectified, batched[2][0].p_rectified)) > 1e-4


def test_concurrent_requests_share_pipeline_calls_with_the_same_results(ckpts, calls, fresh_batchers, monkeypatch):
    spec = ckpts["cls"]
    requests = mixed_requests("cls") * 2  # 12 requests, 19 texts
    monkeypatch.setattr(serving, "BATCHING", False)
    expected = [serving.run_predict(spec, texts, steps) for texts, steps in requests]
    assert len(calls) == len(requests)  # unbatched: one call per request
    calls.clear()

    fresh_batchers(wait_ms=500)
    start = threading.Barrier(len(requests))

    def one(request):
        start.wait()
        return serving.run_predict(spec, *request)

    with ThreadPoolExecutor(len(requests)) as pool:
        got = list(pool.map(one, requests))
    assert len(calls) < len(requests)
    assert sum(len(texts) for texts, _ in calls) == sum(len(texts) for texts, _ in requests)  # nothing run twice
    b = serving._BATCHERS["predict", spec]
    assert b.served == len(requests) and b.calls == len(calls)
    for out, exp in zip(got, expected):
        for a, e in zip(out, exp):
            assert_same(a, e)


def test_a_lone_request_runs_at_once_in_its_own_thread(ckpts, calls, fresh_batchers, monkeypatch):
    """Nothing else in flight: no hand-off to the batch thread and no wait (the batch wait here is 5 s)."""
    spec, threads = ckpts["cls"], []
    call = CoTTPipeline.__call__
    monkeypatch.setattr(CoTTPipeline, "__call__",
                        lambda self, *a, **kw: threads.append(threading.current_thread()) or call(self, *a, **kw))
    fresh_batchers(wait_ms=5000)
    start = time.perf_counter()
    for texts, steps in mixed_requests("cls"):
        serving.run_predict(spec, texts, steps)
    assert time.perf_counter() - start < 5
    assert threads == [threading.current_thread()] * len(mixed_requests("cls"))


def test_a_bad_input_fails_alone(ckpts, calls, fresh_batchers):
    spec = ckpts["rel"]
    good = mixed_requests("rel")
    bad = [(["Ada works for Acme."], None),  # no marks: the pipeline refuses it
           ([REL_TEXTS[0], REL_TEXTS[0]], [None, "person"]),  # a step with one part where the model has two
           ([REL_TEXTS[1]], [None, None])]  # steps that do not line up with the texts
    requests = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]]
    fresh_batchers(wait_ms=500)
    b = serving.batcher("predict", spec)
    futures = [b.submit([r]) for r in requests]  # queued together: one batch
    outcomes = [f.result(timeout=120)[0] for f in futures]
    assert b.calls == 1
    pipe = serving.load_pipeline(spec)
    for r, out in zip(requests, outcomes):
        if r in bad:
            assert isinstance(out, serving.Failure) and out.kind == "ValueError"
            with pytest.raises(ValueError) as alone:
                if len(r[1] or []) != len(r[0]) and r[1] is not None:
                    raise ValueError("give one step per input")
                pipe(r[0], step=r[1])
            assert out.message == str(alone.value)
        else:
            for a, e in zip(out, pipe(r[0], step=r[1])):
                assert_same(a, e)

    # Through the app's entry point, concurrently: only the bad request raises, with the pipeline's own message.
    def one(r):
        try:
            return serving.run_predict(spec, *r)
        except ValueError as err:
            return err

    with ThreadPoolExecutor(len(requests)) as pool:
        got = list(pool.map(one, requests))
    assert [isinstance(g, ValueError) for g in got] == [r in bad for r in requests]
    assert "no subject marked" in str(got[1]) and "2 part" in str(got[3])


def test_batch_file_rows_are_one_call_with_bad_rows_isolated(ckpts, calls, fresh_batchers):
    spec = ckpts["rel"]
    fresh_batchers(wait_ms=50)
    texts = [REL_TEXTS[0], "Ada works for Acme.", REL_TEXTS[1], "  ", REL_TEXTS[2]]
    rows = predict_rows(spec, texts, 0.5)
    assert [bool(r.get("answer")) for r in rows] == [True, False, True, False, True]
    assert "no subject marked" in rows[1]["note"] and rows[3]["note"] == "error: empty text"
    assert serving._BATCHERS["predict", spec].calls == 1  # the whole file chunk: one batched call
    pipe = serving.load_pipeline(spec)
    for r in (rows[0], rows[2], rows[4]):
        p = pipe(r["text"])
        assert r["answer"] == p.answer and math.isclose(r["step_prob"], p.step_prob, abs_tol=TOL)


def test_a_failed_call_reaches_every_caller_and_the_batcher_keeps_serving():
    state = {"fail": True}

    def run(requests):
        if state["fail"]:
            raise RuntimeError("no GPU to be had")
        return [r * 2 for r in requests]

    b = MicroBatcher(run, max_items=8, wait_s=0.3)
    futures = [b.submit([k], 1) for k in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="no GPU"):
            f.result(timeout=30)
    state["fail"] = False
    assert [b.submit([k], 1).result(timeout=30) for k in range(2)] == [[0], [2]]


def test_a_batch_runs_in_the_batchers_thread_in_the_context_of_the_job_that_opened_it():
    """What ZeroGPU reads (the visitor's request, a context variable) is the first job's; a plain request counts as one
    input, a (texts, steps) request as its texts, so two plain ones fill a batch of two and a pair runs alone."""
    import contextvars

    who = contextvars.ContextVar("who", default=None)
    seen = []

    def run(requests):
        seen.append((threading.current_thread().name, who.get(), list(requests)))
        return [r if isinstance(r, str) else len(r[0]) for r in requests]

    def submit_as(name, requests):
        who.set(name)
        return b.submit(requests)

    b = MicroBatcher(run, max_items=2, wait_s=0.5, name="cott-test")
    jobs = [contextvars.copy_context().run(submit_as, name, requests)
            for name, requests in (("ada", ["a"]), ("bob", ["b"]), ("cy", [(["x", "y"], None)]))]
    assert [f.result(timeout=30) for f in jobs] == [["a"], ["b"], [2]]
    assert seen == [("cott-test", "ada", ["a", "b"]), ("cott-test", "cy", [(["x", "y"], None)])]
    assert (b.calls, b.served) == (2, 3)


def test_a_full_batch_runs_at_once_and_a_late_job_waits_for_the_next():
    seen = []
    b = MicroBatcher(lambda requests: seen.append(list(requests)) or requests, max_items=2, wait_s=10.0)
    start = time.perf_counter()
    assert [f.result(timeout=30) for f in [b.submit([1]), b.submit([2])]] == [[1], [2]]
    assert time.perf_counter() - start < 5  # full: no wait for the 10 s to pass
    quick = MicroBatcher(lambda requests: seen.append(list(requests)) or requests, max_items=8, wait_s=0.05)
    first = quick.submit([3])
    time.sleep(0.5)
    assert [first.result(timeout=30), quick.submit([4]).result(timeout=30)] == [[3], [4]]
    assert seen == [[1, 2], [3], [4]] and quick.calls == 2


def test_a_call_while_a_batch_runs_joins_the_next_batch_in_the_batchers_thread():
    started, go, seen = threading.Event(), threading.Event(), []

    def run(requests):
        seen.append((threading.current_thread().name, list(requests)))
        started.set()
        go.wait(30)
        return requests

    b = MicroBatcher(run, max_items=8, wait_s=0.0, name="cott-test")
    first = b.submit(["first"])
    assert started.wait(30)
    with ThreadPoolExecutor(1, thread_name_prefix="visitor") as pool:
        later = pool.submit(b.call, ["later"])
        deadline = time.monotonic() + 3
        while b._queue.qsize() == 0 and time.monotonic() < deadline:  # queued for the next batch, not waiting to run
            time.sleep(0.01)
        go.set()
        assert later.result(timeout=30) == ["later"] and first.result(timeout=30) == ["first"]
    assert seen == [("cott-test", ["first"]), ("cott-test", ["later"])] and (b.calls, b.served) == (2, 2)


def test_a_run_that_loses_outcomes_fails_every_caller_in_words():
    b = MicroBatcher(lambda requests: requests[:1], max_items=8, wait_s=0.3)
    futures = [b.submit([k]) for k in range(2)]
    for f in futures:
        with pytest.raises(RuntimeError, match="^1 outcomes for 2 requests$"):
            f.result(timeout=30)
    assert b.submit([5]).result(timeout=30) == [5]  # the thread keeps serving


def test_batches_are_bounded(ckpts, calls, fresh_batchers):
    spec = ckpts["cls"]
    fresh_batchers(wait_ms=500, batch_max=4)
    b = serving.batcher("predict", spec)
    requests = [([t], None) for t in CLS_TEXTS] + [(CLS_TEXTS[:5], None)]  # 6 single texts, then 5 at once
    futures = [b.submit([r]) for r in requests]
    for f in futures:
        f.result(timeout=120)
    sizes = [len(texts) for texts, _ in calls]
    assert sizes == [4, 2, 5]  # full at 4; the 5-text request does not fit beside 2 and runs alone


def test_sweeps_are_batched_too(ckpts, fresh_batchers, monkeypatch):
    spec = ckpts["rel"]
    pipe = serving.load_pipeline(spec)
    expected = [pipe.sweep(t) for t in REL_TEXTS]
    seen, sweep = [], CoTTPipeline.sweep
    monkeypatch.setattr(CoTTPipeline, "sweep", lambda self, inputs, **kw: seen.append(inputs) or sweep(self, inputs, **kw))
    fresh_batchers(wait_ms=500)

    def together(texts):
        start = threading.Barrier(len(texts))

        def one(text):
            start.wait()
            try:
                return serving.run_sweep(spec, text)
            except ValueError as err:
                return err

        with ThreadPoolExecutor(len(texts)) as pool:
            return list(pool.map(one, texts, timeout=120))

    got = together(REL_TEXTS)
    assert len(seen) < len(REL_TEXTS)
    assert sum(len(x) if isinstance(x, list) else 1 for x in seen) == len(REL_TEXTS)  # each text swept once
    for g, e in zip(got, expected):
        assert_same(g, e)
    got = together(REL_TEXTS[:2] + ["Ada works for Acme."])  # a bad text fails alone
    assert isinstance(got[-1], ValueError) and "no subject marked" in str(got[-1])
    for g, e in zip(got[:2], expected):
        assert_same(g, e)


# ---- what crosses the ZeroGPU boundary -----------------------------------------------------------------------------
def test_gpu_functions_take_and_return_plain_picklable_data(ckpts):
    """On ZeroGPU the decorated calls run in a worker process: arguments and results cross it pickled."""
    for kind in ("cls", "rel"):
        spec = ckpts[kind]
        requests = mixed_requests(kind) + [(["  "], None), ([REL_TEXTS[0]], [None, None])]  # and two bad ones
        args = (spec, requests)
        assert pickle.loads(pickle.dumps(args)) == args
        outcomes = serving.forward_batch(*args)
        assert isinstance(outcomes[-1], serving.Failure) and isinstance(outcomes[-2], serving.Failure)
        assert all(isinstance(p, Prediction) for out in outcomes[:-2] for p in out)
        texts = (REL_TEXTS if kind == "rel" else CLS_TEXTS)[:3] + ["[[x]] and no object"]
        sweeps = serving.sweep_batch(spec, texts)
        for result in (outcomes, sweeps):
            data = pickle.dumps(result)
            assert pickle.loads(data) == result  # dataclasses of str, float, bool, None and lists: equal after the trip
            assert b"torch" not in data and b"numpy" not in data  # no tensors (on ZeroGPU: CUDA tensors) or arrays
        assert isinstance(sweeps[0], Sweep)
        assert isinstance(sweeps[-1], serving.Failure) == (kind == "rel")
    if hasattr(serving, "run_counterfactuals"):  # the Experiment tab's GPU call
        args = (ckpts["cls"], CLS_TEXTS[:3], "all")
        assert pickle.loads(pickle.dumps(args)) == args
        records = serving.run_counterfactuals(*args)
        data = pickle.dumps(records)
        assert records and pickle.loads(data) == records and b"torch" not in data and b"numpy" not in data


def test_failures_raise_as_their_own_exception():
    assert type(serving.Failure("ValueError", "m").exception()) is ValueError
    assert type(serving.Failure("InputError", "m").exception()) is serving.InputError
    err = serving.Failure("CheckpointError", "gone").exception()
    assert type(err) is RuntimeError and str(err) == "CheckpointError: gone"


STUB_SPACES = """
decorated = {}
def GPU(task=None, *, duration=None, size=None):
    def wrap(fn):
        decorated[fn.__name__] = duration
        return fn
    return wrap(task) if callable(task) else wrap
"""

ZERO_GPU_MAIN = """
import sys, torch

def cuda_touched(*args, **kwargs):
    raise AssertionError("the main process touched CUDA")

for name in ("is_available", "device_count", "init", "current_device", "_lazy_init"):
    setattr(torch.cuda, name, cuda_touched)
torch._C._cuda_init = cuda_touched

import spaces  # the stub: it records what is decorated and with which duration
from cott import CoTTPipeline
from cott_demo import serving

assert serving.ZERO_GPU and serving.spaces is spaces
d = spaces.decorated
assert d["forward_batch"] == d["sweep_batch"] == serving.GPU_DURATION and all(d.values()), d  # the batched calls
assert not {"run_predict", "run_sweep", "predict_rows", "forward"} & set(d), d  # not one GPU call per request
assert 5 <= serving.GPU_DURATION <= 60
assert serving.serving_device() == "cuda"
placed = []
CoTTPipeline.from_pretrained = classmethod(lambda cls, spec, device=None, **kw: placed.append(device) or "pipe")
assert serving.load_pipeline("some/checkpoint") == "pipe" and placed == ["cuda"]  # .to("cuda") at load: spaces defers it
print("CONCURRENCY", serving.CONCURRENCY)
"""


@pytest.mark.parametrize("batching", ["1", "0"])
def test_zero_gpu_main_process_never_touches_cuda(tmp_path, batching):
    """With SPACES_ZERO_GPU set (and a stub of spaces, as ZeroGPU itself cannot run on a CPU torch): importing the
    serving layer, working out the queue's concurrency and loading a model ask nothing of torch.cuda, the model is
    placed on "cuda" (which spaces turns into a move onto each call's GPU), and the batched forward and the sweep
    are the functions under spaces.GPU, with a duration."""
    (tmp_path / "spaces.py").write_text(STUB_SPACES, encoding="utf-8")
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "COTT_BATCHING": batching,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("COTT_CONCURRENCY", None)
    env.pop("COTT_DEVICE", None)
    out = subprocess.run([sys.executable, "-c", ZERO_GPU_MAIN], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("CONCURRENCY 40" if batching == "1" else "CONCURRENCY 4") in out.stdout


# ---- the app as a Space runs it ------------------------------------------------------------------------------------
def import_order(importtime_log: str) -> list[str]:
    """Top-level packages in the order their import finished, from ``python -X importtime``'s report."""
    names = []
    for line in importtime_log.splitlines():
        m = re.match(r"import time:\s+\d+\s+\|\s+\d+\s+\|( *)(\S+)", line)
        if m and "." not in m.group(2) and m.group(2) not in names:
            names.append(m.group(2))
    return names


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited ({proc.returncode}): {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"app.py did not listen on {port} within {timeout}s: {log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def space(ckpts, tmp_path_factory):
    """``python app.py`` in a subprocess, as a Space starts it, with the spaces package installed (so imported)."""
    pytest.importorskip("spaces", reason="the spaces package is not installed (requirements.txt, tests)")
    gradio_client = pytest.importorskip("gradio_client")
    logs = tmp_path_factory.mktemp("app_logs")
    port = free_port()
    env = {**os.environ, "COTT_CHECKPOINTS": ",".join(ckpts["dirs"]), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    for name in ("COTT_BATCHING", "COTT_CONCURRENCY", "COTT_DEVICE", "SPACES_ZERO_GPU"):
        env.pop(name, None)
    out, err = logs / "stdout.txt", logs / "stderr.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "app.py"], cwd=ROOT, env=env, stdout=o, stderr=e)
    try:
        wait_for_port(port, proc, err)
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        yield {"client": client, "proc": proc, "stderr": err, "cls": Path(ckpts["cls"]).name,
               "rel": Path(ckpts["rel"]).name}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_app_imports_spaces_before_torch(space):
    order = import_order(space["stderr"].read_text(errors="replace"))
    assert "spaces" in order and "torch" in order, order[:20]
    assert order.index("spaces") < order.index("torch"), order[: order.index("torch") + 1]


def test_app_with_spaces_serves_every_endpoint(space, tmp_path):
    from gradio_client import handle_file

    c, cls, rel = space["client"], space["cls"], space["rel"]
    endpoints = set(c.view_api(return_format="dict", print_info=False)["named_endpoints"])
    driven = {"/predict", "/predict_submit", "/predict_example", "/example", "/inject", "/sweep", "/batch",
              "/model_info", "/clear"}
    assert driven <= endpoints

    for api in ("/predict", "/predict_submit", "/predict_example"):
        status, step_md, step_plot, answer_md, answer_plot, step, raw = c.predict(cls, CLS_TEXTS[0], 0.5, api_name=api)
        assert status == "" and raw["answer"] and step_plot["type"] == "plotly" and step["value"] == raw["step_words"]
    status, *_, raw = c.predict(rel, REL_TEXTS[0], 0.5, api_name="/predict")
    assert status == "" and " | " in raw["step"]
    status, md, plot, raw = c.predict(cls, CLS_TEXTS[1], "banking", 0.5, api_name="/inject")
    assert status == "" and raw["injected_step"] == "banking" and plot["type"] == "plotly"
    status, plot, table = c.predict(rel, REL_TEXTS[1], api_name="/sweep")
    assert status == "" and len(table["data"]) == 9  # subject x object types
    path = tmp_path / "rows.csv"
    path.write_text("id,text\n1,what is my balance\n2,\n3,book a flight\n", encoding="utf-8")
    status, table, download = c.predict(cls, handle_file(str(path)), 0.5, api_name="/batch")
    assert "Processed 3 rows" in status and "1 with errors" in status and Path(download).exists()
    description, *_, step_info = c.predict(rel, api_name="/model_info")
    assert "two parts" in step_info.get("info", ""), step_info
    c.predict(0, cls, api_name="/example")  # answers (these tiny models have no examples in assets/examples.json)
    assert len(c.predict(api_name="/clear")) == 12
    # Bad input: a message, not a failure, also when it shares a batch.
    assert c.predict(rel, "Ada works for Acme.", 0.5, api_name="/predict")[0].startswith("✖")

    # Concurrent requests (batched in the app): the same answers as one at a time.
    calls = [("/predict", (cls, t, 0.5)) for t in CLS_TEXTS] + [("/inject", (cls, t, "travel", 0.5)) for t in CLS_TEXTS[:3]]
    calls += [("/predict", (rel, t, 0.5)) for t in REL_TEXTS] + [("/predict", (rel, "Ada works for Acme.", 0.5))]
    alone = [c.predict(*args, api_name=api)[-1] for api, args in calls]
    with ThreadPoolExecutor(len(calls)) as pool:
        together = list(pool.map(lambda call: c.predict(*call[1], api_name=call[0])[-1], calls))
    for a, t in zip(alone, together):
        if a is None:  # the bad one: no raw output either way
            assert t is None
            continue
        assert close(a, t), (a, t)
    assert space["proc"].poll() is None


def test_a_job_that_would_overflow_a_batch_opens_the_next_one_and_a_large_job_runs_alone():
    """A job is never split: one that does not fit waits to open the next batch (later jobs may join it); one larger
    than ``max_items`` runs alone. Sizes count a (texts, steps) request's texts."""
    seen = []
    b = MicroBatcher(lambda requests: seen.append(list(requests)) or requests, max_items=3, wait_s=0.5)
    jobs = [b.submit([1, 2]), b.submit([(["a", "b"], None)]), b.submit([5])]
    assert [f.result(timeout=30) for f in jobs] == [[1, 2], [(["a", "b"], None)], [5]]
    assert seen == [[1, 2], [(["a", "b"], None), 5]] and (b.calls, b.served) == (2, 4)
    big = b.submit([6, 7, 8, 9])
    assert big.result(timeout=30) == [6, 7, 8, 9] and seen[-1] == [6, 7, 8, 9]
    sized = [b.submit(["x"], size=3), b.submit(["y"], size=1)]  # an explicit size overrides the count
    assert [f.result(timeout=30) for f in sized] == [["x"], ["y"]] and seen[-2:] == [["x"], ["y"]]


def test_a_lone_call_runs_in_the_callers_thread_and_is_counted():
    seen = []

    def run(requests):
        seen.append((threading.current_thread().name, list(requests)))
        return [r * 2 for r in requests]

    b = MicroBatcher(run, max_items=8, wait_s=5.0, name="cott-test")
    start = time.perf_counter()
    assert b.call([1, 2]) == [2, 4] and b.call([3]) == [6]
    assert time.perf_counter() - start < 2  # no wait for a batch to fill
    assert seen == [(threading.current_thread().name, [1, 2]), (threading.current_thread().name, [3])]
    assert (b.calls, b.served, b._in_flight) == (2, 3, 0)
    with pytest.raises(ZeroDivisionError):
        MicroBatcher(lambda requests: [1 / 0], max_items=8, wait_s=0.0).call([1])
    eager = MicroBatcher(lambda requests: requests, max_items=8, wait_s=0.0)
    start = time.perf_counter()
    assert eager.submit([1]).result(timeout=30) == [1]
    assert time.perf_counter() - start < 0.8  # with no wait, a job past its deadline runs at once
