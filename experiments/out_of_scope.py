"""Out-of-scope detection on CLINC150: can the monitor tell queries outside the 150 intents from in-scope ones?

    python -m experiments.out_of_scope --checkpoints assets/clinc150 RUN/best ... --data ../shared/data/clinc150 \\
        --output results/out_of_scope.json [--write]

For each checkpoint and each signal of ``cott.monitor`` (CoTT: p(Î|x), max p̃, max p(y|x), margin, entropy;
baselines: their own answer signals): AUROC and out-of-scope recall at 95% in-scope retention on val + oos_val
and on test + oos_test. The best signal of each checkpoint is picked on validation and its threshold fit there
(95% of in-scope val queries kept); test is read with that threshold. ``--write`` stores signal and threshold in
the first checkpoint (the app's monitor then flags out-of-scope-looking input).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cott import monitor
from cott.checkpoint import command_line, load_checkpoint, update_config
from cott.data import Example, load_clinc150, load_clinc150_out_of_scope
from cott.batching import by_prompt_length
from cott.inference import reason

RETENTION = 0.95


def scores(model, texts: list[str], max_length: int, batch_size: int = 128) -> dict[str, list[float]]:
    """Signal -> score per text (in the order of ``texts``)."""
    examples = by_prompt_length(model, [Example({"text": t}, None, None, {"i": i}) for i, t in enumerate(texts)], max_length)
    out: dict[str, list] = {}
    order = []
    for start in tqdm(range(0, len(examples), batch_size), desc="scores", leave=False):
        chunk = examples[start : start + batch_size]
        r = reason(model, [e.fields for e in chunk], None, max_length)
        for k, v in monitor.signal_scores(r["p_rectified"], r["p_answer"], r.get("p_step_hat")).items():
            out.setdefault(k, []).extend(v.tolist())
        order += [e.meta["i"] for e in chunk]
    back = sorted(range(len(order)), key=order.__getitem__)
    return {k: [v[j] for j in back] for k, v in out.items()}


def read_checkpoint(path: str, data: str, device: str) -> dict:
    model, config = load_checkpoint(path, device)
    max_length = config.max_length
    split = {}
    for name in ("val", "test"):
        inside = [e.fields["text"] for e in load_clinc150(data, name)]
        outside = load_clinc150_out_of_scope(data, name)
        split[name] = (scores(model, inside, max_length), scores(model, outside, max_length), len(inside), len(outside))
    result = {"checkpoint": path, "method": config.method, "signals": {}}
    for signal in split["val"][0]:
        row = {}
        for name, (inside, outside, n_in, n_out) in split.items():
            own = monitor.threshold_at_retention(inside[signal], RETENTION)
            row[name] = {"auroc": monitor.auroc(inside[signal], outside[signal]),
                         "recall_at_95": monitor.recall_at(outside[signal], own), "in_scope": n_in, "out_of_scope": n_out}
        threshold = monitor.threshold_at_retention(split["val"][0][signal], RETENTION)  # fit on validation only
        test_in, test_out = split["test"][0][signal], split["test"][1][signal]
        row["val_threshold"] = threshold
        row["test_with_val_threshold"] = {"recall": monitor.recall_at(test_out, threshold),
                                          "in_scope_kept": 1 - monitor.recall_at(test_in, threshold)}
        result["signals"][signal] = row
    result["best_on_val"] = max(result["signals"], key=lambda s: result["signals"][s]["val"]["auroc"])
    return result


def table(results: list[dict]) -> str:
    lines = ["| checkpoint | method | signal | val AUROC | test AUROC | test recall @95% in-scope | "
             "test recall, val threshold (in-scope kept) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for s, row in r["signals"].items():
            mark = " (best on val)" if s == r["best_on_val"] else ""
            t = row["test_with_val_threshold"]
            lines.append(f"| {r['checkpoint']} | {r['method']} | {s}{mark} | {row['val']['auroc']:.3f} | "
                         f"{row['test']['auroc']:.3f} | {row['test']['recall_at_95']:.3f} | "
                         f"{t['recall']:.3f} ({t['in_scope_kept']:.3f}) |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, help="CLINC150 checkpoints (CoTT and baselines)")
    p.add_argument("--data", required=True, help="the CLINC150 folder (data_full.json with oos_val / oos_test)")
    p.add_argument("--output", help="write all figures as JSON here")
    p.add_argument("--write", action="store_true",
                   help="store the first checkpoint's best validation signal and its threshold in its cott.json")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = [read_checkpoint(c, args.data, device) for c in args.checkpoints]
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))
    print(table(results))
    if args.write:
        first = results[0]
        best = first["best_on_val"]
        update_config(args.checkpoints[0], out_of_scope={
            "signal": best, "threshold": first["signals"][best]["val_threshold"], "retention": RETENTION,
            "fit_on": "CLINC150 val (in-scope) + oos_val", "val_auroc": first["signals"][best]["val"]["auroc"],
            "command": command_line("experiments.out_of_scope", argv)})
    return results


if __name__ == "__main__":
    main()
