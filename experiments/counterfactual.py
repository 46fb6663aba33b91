"""Counterfactual step experiments over a dataset split or a file: does the answer follow the injected step?

    python -m experiments.counterfactual --checkpoint assets/clinc150 --data ../shared/data/clinc150 --split test \\
        --policy random_wrong --output-dir runs/counterfactual/clinc150-random_wrong

Writes ``records.jsonl`` (one input per line, streamed chunk by chunk), ``summary.json`` (flip rate,
step-following rate, accuracy under the injected steps) and two plots: the injected step against the
answer's step (a heatmap) and the flip and following rates per injected step.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm.auto import tqdm

from cott import CoTTPipeline
from cott.tasks import checkpoint_loader
from cott.counterfactual import POLICIES, CounterfactualRecord, summarise
from cott.steps import join
from cott.table import read_rows
from experiments.sources import checkpoint_parser

CHUNK = 512  # inputs per chunk: records reach the disk as they are made


def load_inputs(args, pipe: CoTTPipeline) -> tuple[list, list, list, list]:
    """(inputs, gold steps, gold labels, per-input steps) from ``--data``/``--split`` or ``--file``."""
    if args.file:
        rows = read_rows(args.file)
        inputs = [{k: r[k] for k in ("text", "subj", "obj") if r[k] is not None} for r in rows]
        steps = [r["step"] for r in rows]
        labels = [r["label"] if r["label"] in pipe.labels else None for r in rows]
        return inputs, [None] * len(rows), labels, steps
    examples = checkpoint_loader(pipe.config, task=args.task)(args.data, args.split)
    kept = [e for e in examples if e.label in pipe.labels and e.step and join(e.step) in pipe.steps]
    if len(kept) < len(examples):
        logging.warning("%s: %d of %d examples have a label or step the checkpoint does not know; they are left out",
                        args.split, len(examples) - len(kept), len(examples))
    kept = kept[: args.max_examples] if args.max_examples else kept
    return [e.fields for e in kept], [e.step for e in kept], [e.label for e in kept], [None] * len(kept)


def main(argv=None) -> dict:
    p = checkpoint_parser(__doc__, "dataset path, read with the checkpoint's task loader (gold steps and labels)",
                          "a CSV / JSON lines / Parquet file: text, optional step and label columns")
    p.add_argument("--policy", default="random_wrong", choices=POLICIES,
                   help="which steps to inject: --step into every input (fixed), the file's step column (given), the "
                        "gold step, the runner-up, a seeded random wrong step, or every known step")
    p.add_argument("--step", help="the step of the fixed policy (a label or words; '|' between slots)")
    p.add_argument("--constrained", action="store_true", help="answer only among the answers consistent with the step")
    p.add_argument("--seed", type=int, default=0, help="seed of the random_wrong policy")
    p.add_argument("--max-examples", type=int, help="the first N examples of --data (in file order)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.policy == "fixed" and not args.step:
        p.error("--policy fixed needs --step")
    pipe = CoTTPipeline.from_pretrained(args.checkpoint)
    if not pipe.has_steps:
        p.error(f"{args.checkpoint} has no intermediate step: there is nothing to inject")
    inputs, gold_steps, labels, steps = load_inputs(args, pipe)
    if args.policy == "given" and not all(steps):
        p.error("--policy given needs a step in every row of --file (the 'step' column)")
    if args.policy == "gold" and not any(gold_steps):
        p.error("--policy gold needs --data (gold steps)")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: list[CounterfactualRecord] = []
    with open(out / "records.jsonl", "w", encoding="utf-8") as f, tqdm(total=len(inputs), desc=args.policy) as bar:
        for start in range(0, len(inputs), CHUNK):
            end = start + CHUNK
            chunk = pipe.counterfactuals(
                inputs[start:end], args.policy, steps=args.step if args.policy == "fixed" else steps[start:end],
                gold_steps=gold_steps[start:end], labels=labels[start:end], constrained=args.constrained,
                seed=args.seed + start, batch_size=args.batch_size,
            )
            for rec in chunk:
                rec.index += start
                f.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            records += chunk
            bar.update(len(chunk))
    summary = summarise(records) | {"checkpoint": str(args.checkpoint), "policy": args.policy, "step": args.step,
                                    "constrained": args.constrained, "seed": args.seed,
                                    "source": args.file or f"{args.data} ({args.split})"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    if not args.no_plots:
        plot(records, summary, out, parents=pipe.step_answers)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_step"}, indent=2))
    return summary


def plot(records, summary: dict, out: Path, parents: dict[str, list[str]]) -> list[Path]:
    """Heatmap of injected step -> the step the answer belongs to; bars of flip and following rates per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    owners: dict[str, set] = {}
    for step, answers in parents.items():
        for a in answers:
            owners.setdefault(a, set()).add(step)
    hierarchy = bool(owners) and all(len(v) == 1 for v in owners.values())  # else columns are the answers themselves
    column = {a: (min(v) if hierarchy else a) for a, v in owners.items()}
    steps = sorted(summary["per_step"])
    answer_steps = sorted(set(column.values()) | {column.get(i.answer, "(other)") for r in records for i in r.injections})
    counts = [[0] * len(answer_steps) for _ in steps]
    for rec in records:
        for inj in rec.injections:
            counts[steps.index(inj.step)][answer_steps.index(column.get(inj.answer, "(other)"))] += 1
    share = [[c / max(1, sum(row)) for c in row] for row in counts]
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(answer_steps), 1 + 0.35 * len(steps)))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(answer_steps)), answer_steps, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(steps)), steps, fontsize=7)
    ax.set_xlabel("the step the answer belongs to" if hierarchy else "answer")
    ax.set_ylabel("injected step")
    ax.set_title(f"answers under injection ({summary['policy']})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    files = [out / "step_to_answer.png"]
    fig.savefig(files[0], dpi=120)
    plt.close(fig)
    per = summary["per_step"]
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(steps)), 3.2))
    xs = range(len(steps))
    ax.bar([x - 0.2 for x in xs], [per[s]["flip_rate"] or 0 for s in steps], 0.4, label="flip rate")
    ax.bar([x + 0.2 for x in xs], [per[s]["following_rate"] or 0 for s in steps], 0.4, label="step-following rate")
    ax.set_xticks(list(xs), steps, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("per injected step", fontsize=9)
    fig.tight_layout()
    files.append(out / "rates_per_step.png")
    fig.savefig(files[1], dpi=120)
    plt.close(fig)
    return files


if __name__ == "__main__":
    main()
