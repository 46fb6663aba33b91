"""The clients of benchmarks/load_app.py: N concurrent clients x M requests against a running app, timed.

The clients speak Gradio's HTTP API through httpx (POST /gradio_api/call/<api>, then the event's stream), one session
each, as browser tabs do; ``--client gradio`` in load_app uses gradio_client instead, whose own CPU work is heavier.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor


def http_call(client, api: str, data: list, session: str | None = None) -> list:
    """One call through Gradio's HTTP API (POST, then the event's stream): the outputs; raises on an error event.
    ``session``: the session hash (a browser tab's, reused by its calls; None: Gradio makes one per call)."""
    r = client.post(f"/gradio_api/call/{api}", json={"data": data, "session_hash": session})
    r.raise_for_status()
    event = None
    with client.stream("GET", f"/gradio_api/call/{api}/{r.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event in ("complete", "error"):
                payload = json.loads(line[len("data: "):])
                if event == "error":
                    raise RuntimeError(payload.get("error") if isinstance(payload, dict) else payload)
                return payload
    raise RuntimeError("the event stream ended without a result")


def connect(url: str, kind: str, timeout: float):
    """A client and its call function: ``call(api, data) -> outputs``."""
    if kind == "gradio":
        from gradio_client import Client

        client = Client(url, verbose=False, httpx_kwargs={"timeout": timeout})
        return lambda api, data: client.predict(*data, api_name=f"/{api}")
    import httpx

    client, session = httpx.Client(base_url=url, timeout=timeout), uuid.uuid4().hex  # one session, as a browser tab
    return lambda api, data: http_call(client, api, data, session)


def drive(url: str, name: str, texts: list[str], step, api: str, clients: int, requests: int, timeout: float = 60,
          client: str = "http"):
    """``clients`` clients, each sending ``requests`` requests in turn, all connected before the clock starts:
    (latencies of the answered requests, errors, wall).
    ``client``: "http" (Gradio's HTTP API through httpx: little CPU of its own, as when the clients are elsewhere)
    or "gradio" (gradio_client, whose own work shares this machine's cores with the app).
    ``timeout``: seconds each HTTP call of a client may take."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def one_client(k: int) -> None:
        try:
            call = connect(url, client, timeout)
        except Exception as err:  # counted, not raised
            call = None
            with lock:
                errors.extend([f"connect: {err}"] * requests)
        ready.wait()
        if call is None:
            return
        for r in range(requests):
            text = texts[(k + r) % len(texts)]
            data = {"predict": [name, text, 0.5], "inject": [name, text, step, 0.5], "sweep": [name, text]}[api]
            start = time.perf_counter()
            try:
                out = call(api, data)
                ok = isinstance(out, (list, tuple)) and not str(out[0]).startswith("✖")
                err = None if ok else str(out[0])
            except Exception as e:  # counted, not raised
                err = f"{type(e).__name__}: {e}"
            with lock:
                if err:
                    errors.append(err)
                else:
                    latencies.append(time.perf_counter() - start)

    with ThreadPoolExecutor(clients) as pool:
        done = [pool.submit(one_client, k) for k in range(clients)]
        ready.wait()
        t = time.perf_counter()
        for f in done:
            f.result()
    return latencies, errors, time.perf_counter() - t
