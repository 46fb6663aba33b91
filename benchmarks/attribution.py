"""Time of ``CoTTPipeline.explain`` per text (one text a call, as the demo's button makes it): the median over N test
texts, wall time and the process's CPU time (steadier on a shared machine), per method; and for integrated gradients
how far the scores' sum is from p(Î|x) - p(Î|reference), the integral it approximates (the median gap).

    python -m benchmarks.attribution --checkpoint assets/clinc150 --data ../shared/data/clinc150 --n 50 --threads 1
    python -m benchmarks.attribution --methods ig --ig-steps 32 --n 50 --threads 1   # the gap with more steps
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from cott import CoTTPipeline
from cott.tasks import checkpoint_loader
from cott import attribution
from cott.attribution import METHODS, prompts, target_probs


def completeness_gap(pipe, text) -> float:
    """|sum of the IG scores to p(Î|x) - (p(Î|x) - p(Î|reference))|, the reference's text tokens [PAD]."""
    from dataclasses import replace

    (p,) = prompts(pipe, [pipe.fields(text)], [None])[2]["step"]
    reference = list(p.enc.input_ids)
    for s in p.slots:
        reference[s] = pipe.model.tokenizer.pad_token_id
    full, ref = target_probs(pipe.model, [p.enc, replace(p.enc, input_ids=reference)], "step", [p.target] * 2).tolist()
    return abs(sum(pipe.explain(text, method="ig").step_scores) - (full - ref))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/clinc150")
    p.add_argument("--data", default="../shared/data/clinc150")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=50, help="the first N texts of the split")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--ig-steps", type=int, default=attribution.IG_STEPS, help="integrated-gradients steps")
    args = p.parse_args(argv)
    attribution.IG_STEPS = args.ig_steps
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = CoTTPipeline.from_pretrained(args.checkpoint)
    texts = [e.fields for e in checkpoint_loader(pipe.config)(args.data, args.split)][: args.n]
    out = {"checkpoint": args.checkpoint, "texts": len(texts), "threads": torch.get_num_threads(), "ig_steps": args.ig_steps}
    for method in args.methods:
        pipe.explain(texts[0], method=method)  # warm-up
        wall, cpu = [], []
        for text in texts:
            w, c = time.perf_counter(), time.process_time()
            pipe.explain(text, method=method)
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        out[method] = {"median_wall_s": round(statistics.median(wall), 3), "median_cpu_s": round(statistics.median(cpu), 3),
                       "max_wall_s": round(max(wall), 3)}
    if "ig" in args.methods:
        out["ig"]["median_completeness_gap"] = round(statistics.median(completeness_gap(pipe, t) for t in texts), 4)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
