"""Load benchmark for the demo (app.py, cott_demo/), not a test: N concurrent clients x M requests each.

    python -m benchmarks.load_app                      # 20 clients x 5 requests on /predict
    python -m benchmarks.load_app --clients 20 --requests 5 --api inject \
        --checkpoints /tmp/cott_dev/clinc150,/tmp/cott_dev/conll04
    python -m benchmarks.load_app --compare            # batched vs unbatched, side by side in one run
    python -m benchmarks.load_app --compare --rounds 3 --clients 100 --requests 2
    python -m benchmarks.load_app --compare --threads 1 # torch's intra-op threads in the app (OMP_NUM_THREADS)
    python -m benchmarks.load_app --compare --client gradio  # gradio_client instead of plain HTTP

Launches the app on loopback (a free port) with the given checkpoints (default: COTT_CHECKPOINTS, else
assets/clinc150 and assets/conll04), sends the requests from the example texts, and prints latency
percentiles (each answered request's wall time as a client sees it, queueing included), throughput (answered
requests per second) and errors (refused, failed or timed out), after --warmup untimed requests. Every client
connects before the clock starts. The clients speak Gradio's HTTP API through httpx (POST /gradio_api/call/<api>,
then the event's stream): on this machine they share the cores with the app, and gradio_client (--client gradio)
spends about twice the app's own CPU per request, which would otherwise be measured as the app's slowness. Serving is batched unless COTT_BATCHING=0 (cott_demo/serving.py).

With --compare the app runs in a process of its own (as it does for real users, whose clients are elsewhere; the
clients stay in this one), batched (COTT_BATCHING=1) and unbatched (COTT_BATCHING=0) alternately, --rounds times,
each in a fresh process. It prints each run, the medians per mode and their ratios, the app's own CPU time per
request (which a busy machine slows far less than wall time), and the load average: on a shared machine read the
ratios, measured side by side, rather than absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.load_clients import drive
from cott_demo import serving
from cott_demo.layout import LAUNCH_KWARGS, build_demo

ROOT = Path(__file__).resolve().parents[1]


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


def start_app(specs: list[str]):
    """The app on loopback, in this process: (demo, port, model name, example texts, a step to inject)."""
    demo = build_demo(specs)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_KWARGS)
    models = serving.load_models(specs)  # cached: no second load
    name = next((n for n, m in models.items() if m.pipe is not None), None)
    if name is None:
        demo.close()
        raise SystemExit(f"no checkpoint could be loaded: { {n: m.error for n, m in models.items()} }")
    pipe = models[name].pipe
    texts = serving.load_examples(models).get(name) or ["what is the balance of my account"]
    return demo, port, name, texts, pipe.steps[-1] if pipe.steps else None


def batch_stats() -> dict:
    b = list(serving._BATCHERS.values())
    calls, served = sum(x.calls for x in b), sum(x.served for x in b)
    return {"batch_calls": calls, "mean_batch": round(served / calls, 2) if calls else None}


def app_info() -> dict:
    import torch

    return {"batching": serving.BATCHING, "batch_max": serving.BATCH_MAX, "batch_wait_ms": serving.BATCH_WAIT_MS,
            "concurrency_limit": serving.CONCURRENCY, "device": serving.serving_device(),
            "torch_threads": torch.get_num_threads()}


def figures_of(args, name: str, latencies: list[float], errors: list[str], wall: float, info: dict) -> dict:
    n = args.clients * args.requests
    return {
        "api": args.api, "model": name, "clients": args.clients, "requests_per_client": args.requests, "requests": n,
        **info,
        "p50_s": round(percentile(latencies, 0.5), 3), "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 2), "wall_s": round(wall, 1), "errors": len(errors),
        "client": args.client, "client_timeout_s": args.timeout,
        "error_samples": sorted(set(e[:200] for e in errors))[:5],
    }


def report(f: dict, prefix: str = "") -> None:
    mode = (f"batched (max {f['batch_max']}, wait {f['batch_wait_ms']:g} ms, mean batch {f.get('mean_batch')})"
            if f["batching"] else "unbatched")
    cpu = f" app CPU {f['app_cpu_ms_per_request']:.0f} ms/request," if f.get("app_cpu_ms_per_request") else ""
    print(f"{prefix}/{f['api']} on {f['model']!r}: {f['requests']} requests from {f['clients']} clients in "
          f"{f['wall_s']:.1f}s ({f['throughput_rps']} req/s, {mode}, concurrency limit {f['concurrency_limit']}, "
          f"{f['device']}, {f['torch_threads']} torch threads, {f['client']} clients)")
    print(f"{prefix}latency p50 {f['p50_s']:.3f}s  p95 {f['p95_s']:.3f}s  max {f['max_s']:.3f}s,{cpu} errors {f['errors']}")
    for e in f["error_samples"]:
        print(f"{prefix}  error:", e)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=5, help="requests per client")
    p.add_argument("--api", choices=("predict", "inject", "sweep"), default="predict")
    p.add_argument("--checkpoints", default=os.environ.get("COTT_CHECKPOINTS", ""),
                   help="comma-separated checkpoint dirs or hub ids (default: COTT_CHECKPOINTS or assets/)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--compare", action="store_true",
                   help="run the load batched and unbatched, each in an app process of its own; print both and the ratio")
    p.add_argument("--rounds", type=int, default=1, help="with --compare: alternate batched/unbatched this many times")
    p.add_argument("--threads", type=int, default=0,
                   help="with --compare: OMP_NUM_THREADS for the app processes (torch's intra-op threads; 0: as set)")
    p.add_argument("--warmup", type=int, default=2, help="untimed requests from one client before the load")
    p.add_argument("--client", choices=("http", "gradio"), default="http",
                   help="http: Gradio's HTTP API through httpx (light, as if the clients were elsewhere); "
                        "gradio: gradio_client (heavier: its work shares the cores with the app)")
    p.add_argument("--timeout", type=float, default=60,
                   help="seconds a client's HTTP call may take before it counts as an error (gradio_client: 20)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # --compare's app process
    args = p.parse_args(argv)
    specs = [s.strip() for s in args.checkpoints.split(",") if s.strip()] or serving.configured_checkpoints()
    if args.serve:
        return serve(specs)
    if args.compare:
        return compare(args)

    t0 = time.perf_counter()
    demo, port, name, texts, step = start_app(specs)
    print(f"app up in {time.perf_counter() - t0:.1f}s on port {port}; checkpoints: {', '.join(specs)}")
    if args.warmup:
        drive(f"http://127.0.0.1:{port}/", name, texts, step, args.api, 1, args.warmup, args.timeout, args.client)
    latencies, errors, wall = drive(f"http://127.0.0.1:{port}/", name, texts, step, args.api, args.clients,
                                    args.requests, args.timeout, args.client)
    demo.close()
    figures = figures_of(args, name, latencies, errors, wall, {**app_info(), **batch_stats()})
    report(figures)
    if args.json:
        print(json.dumps(figures))
    return 1 if errors else 0


def serve(specs: list[str]) -> int:
    """--compare's app process: serve until a line (or EOF) on stdin, then print the batchers' counts."""
    demo, port, name, texts, step = start_app(specs)
    print(json.dumps({"ready": True, "port": port, "name": name, "texts": texts, "step": step, **app_info()}),
          flush=True)
    sys.stdin.readline()
    print(json.dumps(batch_stats()), flush=True)
    demo.close()
    return 0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def run_mode(args, batching: bool) -> dict:
    """One run of the load against a fresh app process, batched or not."""
    env = {**os.environ, "COTT_BATCHING": "1" if batching else "0", "PYTHONUNBUFFERED": "1"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cmd = [sys.executable, "-m", "benchmarks.load_app", "--serve"]
    if args.checkpoints:
        cmd += ["--checkpoints", args.checkpoints]
    app = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        ready = None
        for line in app.stdout:
            if line.startswith("{"):
                ready = json.loads(line)
                break
        if ready is None:
            raise SystemExit(f"the app process exited ({app.wait()}) before serving")
        info = {k: ready[k] for k in ("batching", "batch_max", "batch_wait_ms", "concurrency_limit", "device",
                                      "torch_threads")}
        url = f"http://127.0.0.1:{ready['port']}/"
        if args.warmup:
            drive(url, ready["name"], ready["texts"], ready["step"], args.api, 1, args.warmup, args.timeout, args.client)
        load_before, cpu_before = load_average(), cpu_seconds(app.pid)
        latencies, errors, wall = drive(url, ready["name"], ready["texts"], ready["step"], args.api, args.clients,
                                        args.requests, args.timeout, args.client)
        cpu_after = cpu_seconds(app.pid)
        app.stdin.write("stop\n")
        app.stdin.flush()
        stats = next((json.loads(line) for line in app.stdout if line.startswith("{")), {})
    finally:
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
    f = figures_of(args, ready["name"], latencies, errors, wall, {**info, **stats})
    if cpu_before is not None and cpu_after is not None:
        f["app_cpu_ms_per_request"] = round(1000 * (cpu_after - cpu_before) / max(1, len(latencies)), 1)
    f["load_before"], f["load_after"] = load_before, load_average()
    return f


def compare(args) -> int:
    """The same load on fresh app processes, batched and unbatched alternately; medians and ratios."""
    runs: dict[str, list[dict]] = {"batched": [], "unbatched": []}
    for r in range(args.rounds):
        for mode in runs:
            f = run_mode(args, mode == "batched")
            report(f, prefix=f"[{mode} {r + 1}] ")
            print(f"[{mode} {r + 1}] load average before {f['load_before']}, after {f['load_after']}")
            runs[mode].append(f)

    def med(mode, key):
        values = [f[key] for f in runs[mode] if f.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    keys = ("throughput_rps", "p50_s", "p95_s", "max_s", "app_cpu_ms_per_request", "errors")
    heads = ("req/s", "p50 s", "p95 s", "max s", "app CPU ms/req", "errors")
    print(f"\n/{args.api}, {args.clients} clients x {args.requests} requests, {args.rounds} round(s) per mode "
          f"(medians; {os.cpu_count()} CPUs, load average now {load_average()})")
    print(f"{'':12}" + "".join(f"{h:>16}" for h in heads))
    for mode in runs:
        print(f"{mode:12}" + "".join(f"{med(mode, k):>16g}" for k in keys))
    ratio = {k: med("batched", k) / med("unbatched", k) if med("unbatched", k) else float("nan") for k in keys[:-1]}
    print(f"{'batched/unb.':12}" + "".join(f"{ratio[k]:>16.2f}" for k in ratio))
    if args.json:
        print(json.dumps({"runs": runs, "ratio": {k: round(v, 3) for k, v in ratio.items()}}))
    errors = sum(f["errors"] for mode in runs for f in runs[mode])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
