"""How faithful are the word attributions? Deletion curves over a dataset split or a file:

    python -m experiments.attribution --checkpoint assets/clinc150 --data ../shared/data/clinc150 --split test \\
        --max-examples 500 --output results/attribution_clinc150.json --plot results/attribution_clinc150.png

For each text and each target (p(Î|x) in Step I, p(ŷ|x,Î) in Step II) the k = 0..K words each method ranks highest
are removed from the prompt, and so are k random words (seeded); the curves are the mean probabilities. Prints and
writes, per target and method, the curve, the area between the random curve and the method's (larger: more
faithful; about 0: no better than random) and the ratio of the falls at k = 3.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from cott import CoTTPipeline
from cott.tasks import checkpoint_loader
from cott import attribution
from cott.attribution import METHODS
from cott.faithfulness import RANDOM, area_between, deletion_curves
from cott.table import read_rows
from experiments.sources import checkpoint_parser


def load_inputs(args, pipe: CoTTPipeline) -> list:
    """The first ``--max-examples`` inputs of ``--data``/``--split`` (file order) or of ``--file``."""
    if args.file:
        inputs = [{k: r[k] for k in ("text", "subj", "obj") if r[k] is not None} for r in read_rows(args.file)]
    else:
        inputs = [e.fields for e in checkpoint_loader(pipe.config, task=args.task)(args.data, args.split)]
    return inputs[: args.max_examples] if args.max_examples else inputs


def summarise(curves, k: int) -> dict:
    """Per target: every method's curve, its area against random, and its fall at k over random's."""
    out: dict = {}
    for c in curves:
        rnd = next(r for r in curves if r.target == c.target and r.method == RANDOM)
        row = {"probs": [round(p, 4) for p in c.probs], "n": c.n}
        if c.method != RANDOM:
            row["area_vs_random"] = round(area_between(c, rnd), 4)
            row[f"drop_at_{k}_over_random"] = round(c.drop(k) / rnd.drop(k), 3) if rnd.drop(k) > 0 else None
        out.setdefault(c.target, {})[c.method] = row
    return out


def plot(summary: dict, path: Path, title: str) -> None:
    """One panel per target: mean probability against the number of deleted words, per method and random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"step": "p(Î|x), Step I", "answer": "p(ŷ|x,Î), Step II"}
    fig, axes = plt.subplots(1, len(summary), figsize=(4.2 * len(summary), 3.2), squeeze=False)
    for ax, (target, rows) in zip(axes[0], summary.items()):
        for method, row in rows.items():
            style = {"ls": "--", "color": "gray"} if method == RANDOM else {}
            label = method if method == RANDOM else f"{method} (area {row['area_vs_random']:+.3f})"
            ax.plot(range(len(row["probs"])), row["probs"], marker="o", ms=3, label=label, **style)
        ax.set_xlabel("words deleted (top-k attributed, or random)")
        ax.set_ylabel(f"mean {names.get(target, target)}")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = checkpoint_parser(__doc__, "dataset path, read with the checkpoint's task loader",
                          "a CSV / JSON lines / Parquet file with a text column (relations: subj, obj)")
    p.add_argument("--max-examples", type=int, help="the first N inputs (in file order)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--k", type=int, default=5, help="delete up to K words")
    p.add_argument("--seed", type=int, default=0, help="seed of the random deletions")
    p.add_argument("--ig-steps", type=int, default=attribution.IG_STEPS, help="integrated-gradients steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--output", help="write the summary here (JSON)")
    p.add_argument("--plot", help="write the deletion curves here (PNG)")
    args = p.parse_args(argv)
    attribution.IG_STEPS = args.ig_steps
    pipe = CoTTPipeline.from_pretrained(args.checkpoint)
    if not pipe.has_steps:
        p.error(f"{args.checkpoint} has no intermediate step to explain")
    inputs = load_inputs(args, pipe)
    start = time.perf_counter()
    with tqdm(total=len(inputs), desc="deletion curves") as bar:
        curves = deletion_curves(pipe, inputs, args.methods, args.k, args.seed, args.batch_size, bar.update)
    k = min(3, args.k)
    summary = {"checkpoint": str(args.checkpoint), "source": args.file or f"{args.data} ({args.split})",
               "texts": len(inputs), "k": args.k, "seed": args.seed, "ig_steps": args.ig_steps,
               "seconds": round(time.perf_counter() - start, 1),
               "targets": summarise(curves, k)}
    if args.output:
        Path(args.output).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.plot:
        plot(summary["targets"], Path(args.plot), f"{Path(args.checkpoint).name}: deletion curves, {len(inputs)} texts")
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
