"""Cost of CoTT against fine-tuning, measured side by side in one run on the same inputs.

Prints: CoTT inference time per input / a fine-tuned classifier's single forward (target <= 2.2),
CoTT training-iteration time / fine-tuning iteration time (target <= 3.3), each as wall time and as the process's
CPU time (steadier than wall time on a shared machine, with --threads 1), and peak memory of each.
Each measurement runs in a fresh process so its peak memory is its own.

    python -m benchmarks.cost --data ../shared/data/clinc150 --n 256 --batch-size 32
    python -m benchmarks.cost --template "[T] [C] [A]" --kinds inference   # a shorter CoTT prompt (untrained:
                                                                          # cost does not depend on the weights)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import statistics
import time

from cott.tasks import get_task


def sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock times are true."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _measure(kind: str, method: str, args: dict, queue) -> None:
    import torch

    from cott.batching import TrainingBatcher
    from cott.data import load_clinc150
    from cott.inference import reason
    from cott.losses import LossConfig, cott_loss
    from cott.tasks import label_sets
    from train.build import build_model

    torch.manual_seed(0)
    examples = load_clinc150(args["data"], "train")
    steps, answers = label_sets(examples)
    examples = random.Random(0).sample(examples, args["n"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    template = args["template"] if method == "cott" else None
    model = build_model(get_task("clinc150"), method, args["model"], steps, answers, template=template).to(device)
    if args["quantize"] and kind == "inference":
        from cott.quantization import quantize

        quantize(model, args["quantize"])
    bs = args["batch_size"]
    batches = [examples[i : i + bs] for i in range(0, len(examples), bs)]
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    times, cpu = [], []
    if kind == "inference":
        model.eval()
        for rep in range(args["repeats"] + 1):
            sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            for b in batches:
                reason(model, [e.fields for e in b], None, args["max_length"])
            sync(device)
            if rep:  # the first pass warms up
                times.append((time.perf_counter() - start) / len(examples))
                cpu.append((time.process_time() - cpu_start) / len(examples))
    else:
        model.train()
        batcher = TrainingBatcher(model, args["max_length"])
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        for i, b in enumerate(batches[: args["train_iterations"] + 1]):
            sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss, _ = cott_loss(model, batcher(b, random.Random(i)), LossConfig())
            loss.backward()
            opt.step()
            opt.zero_grad()
            sync(device)
            if i:
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"kind": kind, "method": method, "seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu),
               "peak_mib": round(peak), "device": device, "threads": torch.get_num_threads()})


def measure(kind: str, method: str, args: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, method, args, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"the {kind} measurement of {method} failed (exit code {proc.exitcode})")
    return queue.get(timeout=10)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/clinc150", help="CLINC150 folder (inputs to time)")
    p.add_argument("--model", default="minilm")
    p.add_argument("--n", type=int, default=256, help="inputs timed for inference")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3, help="timed inference passes (median)")
    p.add_argument("--train-iterations", "--train-steps", type=int, default=5, help="timed training iterations (median)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch's CPU threads (0: torch's default); with 1, CPU time is steady on a busy machine")
    p.add_argument("--quantize", choices=("int8",), help="time inference with both encoders in dynamic int8 (CPU)")
    p.add_argument("--template", help="CoTT's template (default: the CLINC150 task's)")
    p.add_argument("--kinds", nargs="+", choices=("inference", "train"), default=["inference", "train"])
    args = vars(p.parse_args())
    rows = {}
    # Interleave the two methods so machine noise hits both alike.
    for kind in args["kinds"]:
        for method in ("finetune", "cott"):
            rows[(kind, method)] = measure(kind, method, args)
            print(json.dumps(rows[(kind, method)]))
    device = rows[(args["kinds"][0], "cott")]["device"]
    template = args["template"] or get_task("clinc150").template
    print(f"\ndevice {device}; {args['n']} CLINC150 inputs, batch {args['batch_size']}, max length {args['max_length']}; "
          f"CoTT template {template!r}; {rows[(args['kinds'][0], 'cott')]['threads']} torch thread(s)"
          + (f"; inference in {args['quantize']}" if args["quantize"] else ""))
    print("| measure | fine-tuning | CoTT | ratio (target) |\n|---|---|---|---|")
    unit = "MiB (GPU, max allocated)" if device == "cuda" else "MiB (process peak RSS)"
    measures = {"inference": ("inference per input", 1e3, "ms", 2.2), "train": ("training iteration", 1, "s", 3.3)}
    for kind in args["kinds"]:
        ft, cott = rows[(kind, "finetune")], rows[(kind, "cott")]
        name, scale, unit_of_time, target = measures[kind]
        for key, what in (("seconds", ""), ("cpu_seconds", ", CPU time")):
            print(f"| {name}{what} | {ft[key] * scale:.3f} {unit_of_time} | {cott[key] * scale:.3f} {unit_of_time} | "
                  f"{cott[key] / ft[key]:.2f} (<= {target}) |")
        print(f"| peak memory, {kind} | {ft['peak_mib']} | {cott['peak_mib']} | {unit} |")

if __name__ == "__main__":
    main()
