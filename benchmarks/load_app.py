"""Load benchmark for the demo (app.py, cott_demo/), not a test: N concurrent gradio_client clients x M requests each.

    python benchmarks/load_app.py                      # 20 clients x 5 requests on /predict
    python benchmarks/load_app.py --clients 20 --requests 5 --api inject \
        --checkpoints /tmp/cott_dev/clinc150,/tmp/cott_dev/conll04
    python benchmarks/load_app.py --compare            # batched vs unbatched, side by side in one run
    python benchmarks/load_app.py --compare --rounds 3 --clients 100 --requests 2

Launches the app on loopback (a free port) with the given checkpoints (default: COTT_CHECKPOINTS, else
assets/clinc150 and assets/conll04), sends the requests from the example texts, and prints latency
percentiles (each request's wall time as a client sees it, queueing included), throughput and errors.
Serving is batched unless COTT_BATCHING=0 (cott_demo/serving.py). With --compare the same load runs in two fresh
app processes, batched (COTT_BATCHING=1) then unbatched (COTT_BATCHING=0), --rounds times alternately; it prints
each run, the medians per mode, their ratios, and the load average (the machine is often shared: read ratios
measured side by side, not absolute times).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cott_demo import serving  # noqa: E402
from cott_demo.layout import LAUNCH_KWARGS, build_demo  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=5, help="requests per client")
    p.add_argument("--api", choices=("predict", "inject", "sweep"), default="predict")
    p.add_argument("--checkpoints", default=os.environ.get("COTT_CHECKPOINTS", ""),
                   help="comma-separated checkpoint dirs or hub ids (default: COTT_CHECKPOINTS or assets/)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--compare", action="store_true",
                   help="run the load batched and unbatched, each in its own app process, and print both and the ratio")
    p.add_argument("--rounds", type=int, default=1, help="with --compare: alternate batched/unbatched this many times")
    args = p.parse_args(argv)
    if args.compare:
        return compare(args)

    from gradio_client import Client

    specs = [s.strip() for s in args.checkpoints.split(",") if s.strip()] or serving.configured_checkpoints()
    t0 = time.perf_counter()
    demo = build_demo(specs)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    print(f"app up in {time.perf_counter() - t0:.1f}s on port {port}; checkpoints: {', '.join(specs)}")
    models = serving.load_models(specs)  # cached: no second load
    name = next((n for n, m in models.items() if m.pipe is not None), None)
    if name is None:
        print("no checkpoint could be loaded:", {n: m.error for n, m in models.items()})
        demo.close()
        return 2
    pipe = models[name].pipe
    texts = serving.load_examples(models).get(name) or ["what is the balance of my account"]
    step = pipe.steps[-1] if pipe.steps else None
    url = f"http://127.0.0.1:{port}/"

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one_client(k: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as err:  # counted, not raised
            with lock:
                errors.extend([f"connect: {err}"] * args.requests)
            return
        for r in range(args.requests):
            text = texts[(k + r) % len(texts)]
            if args.api == "predict":
                call = (name, text, 0.5)
            elif args.api == "inject":
                call = (name, text, step, 0.5)
            else:
                call = (name, text)
            start = time.perf_counter()
            try:
                out = client.predict(*call, api_name=f"/{args.api}")
                ok = isinstance(out, (list, tuple)) and not str(out[0]).startswith("✖")
                err = None if ok else str(out[0])
            except Exception as e:  # counted, not raised
                err = f"{type(e).__name__}: {e}"
            with lock:
                latencies.append(time.perf_counter() - start)
                if err:
                    errors.append(err)

    t1 = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(one_client, range(args.clients)))
    wall = time.perf_counter() - t1
    demo.close()
    batchers = [b for (kind, _), b in serving._BATCHERS.items() if kind == args.api or kind == "predict"]
    calls, served = sum(b.calls for b in batchers), sum(b.served for b in batchers)

    n = args.clients * args.requests
    figures = {
        "api": args.api, "model": name, "clients": args.clients, "requests_per_client": args.requests, "requests": n,
        "batching": serving.BATCHING, "batch_max": serving.BATCH_MAX, "batch_wait_ms": serving.BATCH_WAIT_MS,
        "mean_batch": round(served / calls, 2) if calls else None,
        "concurrency_limit": serving.CONCURRENCY, "device": serving.serving_device(),
        "p50_s": round(percentile(latencies, 0.5), 3), "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 2), "wall_s": round(wall, 1), "errors": len(errors),
    }
    mode = (f"batched (max {serving.BATCH_MAX}, wait {serving.BATCH_WAIT_MS:g} ms, mean batch {figures['mean_batch']})"
            if serving.BATCHING else "unbatched")
    print(f"/{args.api} on {name!r}: {n} requests from {args.clients} clients in {wall:.1f}s "
          f"({figures['throughput_rps']} req/s, {mode}, concurrency limit {serving.CONCURRENCY}, {figures['device']})")
    print(f"latency p50 {figures['p50_s']:.3f}s  p95 {figures['p95_s']:.3f}s  max {figures['max_s']:.3f}s  errors {len(errors)}")
    for e in sorted(set(errors))[:5]:
        print("  error:", e[:200])
    if args.json:
        print(json.dumps(figures))
    return 1 if errors else 0


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def compare(args) -> int:
    """The same load in fresh app processes, batched and unbatched alternately; medians and ratios."""
    runs: dict[str, list[dict]] = {"batched": [], "unbatched": []}
    base = [sys.executable, str(Path(__file__).resolve()), "--clients", str(args.clients), "--requests",
            str(args.requests), "--api", args.api, "--json"]
    if args.checkpoints:
        base += ["--checkpoints", args.checkpoints]
    failed = False
    for r in range(args.rounds):
        for mode, flag in (("batched", "1"), ("unbatched", "0")):
            before = load_average()
            proc = subprocess.run(base, env={**os.environ, "COTT_BATCHING": flag}, capture_output=True, text=True)
            lines = proc.stdout.strip().splitlines()
            for line in lines:
                if not line.startswith("{"):
                    print(f"[{mode} {r + 1}] {line}")
            fig = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)
            if fig is None:
                print(f"[{mode} {r + 1}] no figures (exit {proc.returncode}):", proc.stderr.strip()[-2000:])
                failed = True
                continue
            fig["load_before"], fig["load_after"] = before, load_average()
            print(f"[{mode} {r + 1}] load average before {fig['load_before']}, after {fig['load_after']}")
            runs[mode].append(fig)
    if not runs["batched"] or not runs["unbatched"]:
        return 2

    def med(mode, key):
        return statistics.median(f[key] for f in runs[mode])

    keys = ("throughput_rps", "p50_s", "p95_s", "max_s", "errors")
    print(f"\n/{args.api}, {args.clients} clients x {args.requests} requests, {args.rounds} round(s) each "
          f"(median over rounds; load average now {load_average()}, {os.cpu_count()} CPUs)")
    print(f"{'':12}" + "".join(f"{k:>16}" for k in keys))
    for mode in runs:
        print(f"{mode:12}" + "".join(f"{med(mode, k):>16g}" for k in keys))
    ratio = {"throughput": med("batched", "throughput_rps") / med("unbatched", "throughput_rps"),
             "p50": med("batched", "p50_s") / med("unbatched", "p50_s"),
             "p95": med("batched", "p95_s") / med("unbatched", "p95_s")}
    print(f"{'ratio b/u':12}{ratio['throughput']:>16.2f}{ratio['p50']:>16.2f}{ratio['p95']:>16.2f}")
    if args.json:
        print(json.dumps({"runs": runs, "ratio": {k: round(v, 3) for k, v in ratio.items()}}))
    errors = sum(f["errors"] for mode in runs for f in runs[mode])
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
