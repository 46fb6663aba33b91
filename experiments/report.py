"""Make results/README.md's grid table and plots from results/results.jsonl: ``python -m experiments.report``.

results/README.md is hand-written around one generated block (between the ``results:begin`` and ``results:end``
markers): the report rewrites that block only, so the analysis and the reproduction commands around it stay.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from collections import defaultdict
from pathlib import Path

ORDER = ["finetune", "prompt", "cott", "cott w/o rectification", "cott w/o L_cc", "cott Step I only",
         "prompt + MLM warm-up", "cott + MLM warm-up", "cott + MLM warm-up w/o rectification",
         "cott + MLM warm-up w/o L_cc", "cott + MLM warm-up Step I only",
         "prompt + MLM warm-up + soft verbalizer", "cott + MLM warm-up + soft verbalizer",
         "cott + MLM warm-up + soft verbalizer w/o rectification", "cott + MLM warm-up + soft verbalizer w/o L_cc",
         "cott + MLM warm-up + soft verbalizer Step I only"]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
NOTE = "<!-- made by python -m experiments.report from results/results.jsonl; do not edit by hand -->"
BASE_COTT = "cott + MLM warm-up + soft verbalizer"  # today's CoTT, against which step-following variants are read
NA = "n/a"  # a reading the model does not have (a Step I only model never trained Step II)


def _ordered(configs) -> list[str]:
    """Configs in ORDER; ones ORDER does not name follow, sorted, rather than vanishing from the report."""
    rank = {c: i for i, c in enumerate(ORDER)}
    return sorted(set(configs), key=lambda c: (rank.get(c, len(ORDER)), c))


def _key(r) -> str:
    return "f1" if "f1" in r["test"]["answer"] else "accuracy"  # relation metrics carry f1 (no_relation left out)


def _two_step(r) -> bool:
    """A CoTT run (it has a Step I and read its test set in every answer mode)."""
    return "step2" in r["test"]


def _step2_trained(r) -> bool:
    """A Step I only model answers directly and never trained Step II: its Step II readings mean nothing."""
    return r["test"].get("answer_mode") != "direct"


def readings(r) -> dict[str, float | None]:
    """The test scores of one run: its answer (the answer mode it was trained for: rectified for CoTT), and for
    CoTT runs the same model's direct p(y|x) and Step II p(y|x,Î) (None where Step II was never trained)."""
    key, test = _key(r), r["test"]
    out = {"answer": test["answer"][key]}
    if _two_step(r):
        out["direct"] = test["direct"][key]
        out["step2"] = test["step2"][key] if _step2_trained(r) else None
    return out


MISSING = object()  # a figure the record does not hold (not measured), as against None (does not apply)


def sensitivities(r) -> dict:
    """How often injecting the runner-up step changes the final answer ('answer') and Step II's ('step2').

    Records written before the evaluator measured the final answer hold only Step II's, under the name
    ``step_sensitivity``; later ones hold the final answer's there (None for a model that answers directly) and
    Step II's as ``step2_sensitivity``. A Step I only model's Step II is untrained: its figure does not apply."""
    test = r["test"]
    if "step2_sensitivity" in test:
        step2 = test["step2_sensitivity"] if _step2_trained(r) else None
        return {"answer": test.get("step_sensitivity"), "step2": step2}
    if "step_sensitivity" not in test:
        return {"answer": MISSING, "step2": MISSING}
    return {"answer": MISSING, "step2": test["step_sensitivity"] if _step2_trained(r) else None}


def _mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _cell(values, sd: bool = True) -> str:
    if not values:
        return "–"
    if any(v is None for v in values):
        return NA
    m, s = _mean_sd([100 * v for v in values])
    return f"{m:.1f} ± {s:.1f}" if sd else f"{m:.1f}"


def _groups(records):
    groups = defaultdict(list)
    for r in records:
        groups[(r["task"], r["budget"], r["config"])].append(r)
    return groups


def table(records) -> str:
    """One row per task, budget and method, means over seeds. A CoTT row also shows the same models read
    directly (p(y|x), Step I's own answer) and through Step II alone (p(y|x,Î)), beside their rectified answer."""
    groups = _groups(records)
    lines = ["| task | budget | method | seeds | test score, answer mode (mean ± sd) | direct p(y\\|x) | "
             "Step II p(y\\|x,Î) | step acc. | acc. @90% cov. | acc. @80% cov. | step sensitivity, answer | "
             "step sensitivity, Step II | follows a random wrong step | wall s / run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for task, budget in sorted({(t, b) for t, b, _ in groups}):
        for config in _ordered(c for t, b, c in groups if (t, b) == (task, budget)):
            items = groups[(task, budget, config)]
            reads = [readings(r) for r in items]

            def opt(key, sub=None):
                vals = [r["test"][key][sub] if sub else r["test"][key] for r in items if key in r["test"]]
                return f"{100 * statistics.mean(vals):.1f}" if vals else "–"

            def sens(which):
                vals = [v for v in (sensitivities(r)[which] for r in items) if v is not MISSING]
                if not vals:
                    return "–"
                return NA if any(v is None for v in vals) else f"{100 * statistics.mean(vals):.1f}"

            two_step = all("direct" in x for x in reads)
            direct = _cell([x["direct"] for x in reads]) if two_step else "–"
            step2 = _cell([x["step2"] for x in reads]) if two_step else "–"
            walls = [r["wall_seconds"] for r in items if r.get("wall_seconds") is not None]
            wall = (f"{statistics.mean(walls):.0f}" if walls else "–") + (" †" if len(walls) < len(items) else "")
            lines.append(f"| {task} | {budget} | {config} | {len(items)} | {_cell([x['answer'] for x in reads])} | "
                         f"{direct} | {step2} | {opt('step_accuracy')} | {opt('accuracy_at_coverage', '0.90')} | "
                         f"{opt('accuracy_at_coverage', '0.80')} | {sens('answer')} | {sens('step2')} | "
                         f"{opt('following_rate')} | {wall} |")
    if any(r.get("wall_seconds") is None for r in records):
        lines.append("\n† mean over the runs with a known wall time: a run interrupted and resumed "
                     "(`resumed_at_iteration`, in older records `resumed_at_step`, in the results file) is left out of it.")
    return "\n".join(lines)


def direct_vs_answer(records) -> str:
    """How often the same CoTT models' direct p(y|x) beats their rectified answer (per table row, means)."""
    rows = above = below = 0
    for items in _groups(records).values():
        if not all(_two_step(r) and _step2_trained(r) for r in items):
            continue
        rows += 1
        direct = statistics.mean(readings(r)["direct"] for r in items)
        answer = statistics.mean(readings(r)["answer"] for r in items)
        above += round(100 * direct, 1) > round(100 * answer, 1)
        below += round(100 * direct, 1) < round(100 * answer, 1)
    return (f"In {above} of the {rows} rows of two-step CoTT models the same models' direct p(y|x) scores above "
            f"their answer (rectified), in {below} below, in {rows - above - below} the same (to 0.1).")


FOLLOWING_COLUMNS = [  # (header, path into a record's test reading); scores under the task's key
    ("answer", ("answer", None)), ("direct p(y\\|x)", ("direct", None)), ("Step II", ("step2", None)),
    ("gold-step oracle", ("oracle", "gold_step_injected")),
    ("follows random wrong", ("random_wrong", "following_rate")), ("flips, random wrong", ("random_wrong", "flip_rate")),
    ("follows runner-up", ("runner_up", "following_rate")), ("flips, runner-up", ("runner_up", "flip_rate")),
    ("step sensitivity", ("step_sensitivity", "")), ("acc. @90% cov.", ("accuracy_at_coverage", "0.90")),
    ("out-of-scope AUROC", ("out_of_scope", "test_auroc")),
    ("random wrong → no_relation", ("random_wrong", "negative_rate")),
    ("follows random wrong, not no_relation", ("random_wrong", "following_rate_without_negative")),
]


def _following_value(r, path):
    test = r["test"]
    if path[1] is None:  # an answer mode's score
        return test[path[0]][_key(r)] if path[0] in test else None
    if path[0] == "oracle":
        return test["oracle"][path[1]]
    value = test.get(path[0])
    return value if not path[1] or value is None else value.get(path[1])


def following_table(records) -> str:
    """Runs read by experiments.following (injections under a random wrong and the runner-up step), per task, budget
    and method, mean ± sd over seeds; columns a task never has are left out."""
    runs = [r for r in records if "random_wrong" in r["test"]]
    if not runs:
        return ""
    groups = _groups(runs)
    used = [(h, p) for h, p in FOLLOWING_COLUMNS if any(_following_value(r, p) is not None for r in runs)]
    lines = ["| task | budget | method | seeds | " + " | ".join(h for h, _ in used) + " |",
             "|---" * (4 + len(used)) + "|"]
    for task, budget, config in sorted(groups, key=lambda g: (g[0], g[1], g[2] != BASE_COTT, g[2])):
        items = groups[(task, budget, config)]
        cells = []
        for _, path in used:
            vals = [_following_value(r, path) for r in items]
            cells.append("–" if any(v is None for v in vals) else _cell(vals))
        lines.append(f"| {task} | {budget} | {config} | {len(items)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def following_curve(records, out_dir: Path) -> list[Path]:
    """Per task and budget read by experiments.following: test score against how often the answer follows a random
    wrong step, one point per method (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    groups = _groups([r for r in records if "random_wrong" in r["test"]])
    for task, budget in sorted({(t, b) for t, b, _ in groups}):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for config in sorted(c for t, b, c in groups if (t, b) == (task, budget)):
            items = groups[(task, budget, config)]
            fx = _mean_sd([100 * r["test"]["random_wrong"]["following_rate"] for r in items])
            fy = _mean_sd([100 * readings(r)["answer"] for r in items])
            ax.errorbar(fx[0], fy[0], xerr=fx[1], yerr=fy[1], fmt="o" if config == BASE_COTT else "s", capsize=3,
                        label=config.replace(BASE_COTT, "CoTT") or config)
        ax.set_xlabel("answer follows a random wrong step (%)")
        ax.set_ylabel("test score (%), own step")
        ax.set_title(f"{task}, {budget}", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        files.append(out_dir / f"{task}_{_slug(budget)}_following.png")
        fig.savefig(files[-1], dpi=120)
        plt.close(fig)
    return files


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def plots(records, out_dir: Path) -> list[Path]:
    """Per task and budget: the answer score by method (CoTT bars marked with the same models' direct and Step II
    scores), and accuracy vs coverage from p(Î|x) for each run of the shipped kinds of CoTT models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    groups = _groups(records)
    for task, budget in sorted({(t, b) for t, b, _ in groups}):
        stem = f"{task}_{_slug(budget)}"
        configs = _ordered(c for t, b, c in groups if (t, b) == (task, budget))
        reads = {c: [readings(r) for r in groups[(task, budget, c)]] for c in configs}
        fig, ax = plt.subplots(figsize=(8.5, 3.6))
        stats = [_mean_sd([100 * x["answer"] for x in reads[c]]) for c in configs]
        means = [m for m, _ in stats]
        ax.bar(configs, means, yerr=[s for _, s in stats], capsize=4,
               color=["#9aa5b1" if not c.startswith("cott") else "#4c6ef5" for c in configs])
        shown = list(means)
        for key, marker, label in (("direct", "D", "same model, direct p(y|x)"), ("step2", "v", "same model, Step II p(y|x,Î)")):
            xs, ys = [], []
            for i, c in enumerate(configs):
                vals = [x.get(key) for x in reads[c]]
                if vals and all(v is not None for v in vals):
                    xs.append(i)
                    ys.append(100 * statistics.mean(vals))
            if xs:
                ax.scatter(xs, ys, marker=marker, color="#e8590c" if key == "direct" else "#2b8a3e", zorder=3, s=22, label=label)
                shown += ys
        if len(shown) > len(means):
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylabel("test score (%)")
        ax.set_ylim(max(0, min(shown) - 10), min(100, max(shown) + 5))
        ax.set_title(f"{task}, {budget}: score by method (mean ± sd over seeds)", fontsize=10)
        ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        files.append(out_dir / f"{stem}_methods.png")
        fig.savefig(files[-1], dpi=120)
        plt.close(fig)
        runs = [r for c in configs for r in groups[(task, budget, c)]
                if "accuracy_at_coverage" in r["test"] and _two_step(r) and _step2_trained(r)
                and not ("w/o" in c or "Step I only" in c)]
        if runs:
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for r in runs:
                curve = r["test"].get("coverage_curve") or sorted((float(c), a) for c, a in r["test"]["accuracy_at_coverage"].items())
                ax.plot([100 * c for c, _ in curve], [100 * a for _, a in curve], marker=".",
                        linestyle="-" if r["config"] == "cott" else "--", label=f"{r['config']}, seed {r['seed']}")
            ax.set_xlabel("coverage (%), abstaining on low p(Î|x)")
            ax.set_ylabel("accuracy on covered (%)")
            ax.set_title(f"{task}, {budget}: the reasoning monitor", fontsize=10)
            ax.legend(fontsize=7)
            fig.tight_layout()
            files.append(out_dir / f"{stem}_coverage.png")
            fig.savefig(files[-1], dpi=120)
            plt.close(fig)
    return files


def block(md: str, files: list[Path], base: Path) -> str:
    """The generated block: the table, then the plots linked relative to ``base`` (the README's folder)."""
    images = "\n".join(f"![{f.stem}]({Path(os.path.relpath(f, base)).as_posix()})" for f in files)
    return f"{BEGIN}\n{NOTE}\n\n{md}\n\n{images}\n{END}"


def update_readme(readme: Path, md: str, files: list[Path]) -> None:
    """Replace the generated block of ``readme`` (results/README.md), keeping everything around it; a missing
    README is started with the block alone, for the analysis to be written around it."""
    new = block(md, files, readme.parent)
    if not readme.exists():
        readme.write_text(f"# Results\n\n{new}\n")
        return
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + new + rest.split(END, 1)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results/results.jsonl")
    p.add_argument("--out", default="results", help="folder of table.md and the plots")
    p.add_argument("--readme", default="results/README.md", help="README whose generated block is rewritten ('' to skip)")
    args = p.parse_args(argv)
    records = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    md = table(records) + "\n\n" + direct_vs_answer(records)
    following = following_table(records)
    if following:
        md += "\n\n**Does the answer follow the step?** (runs read by `experiments.following`; test split)\n\n" + following
    Path(args.out, "table.md").write_text(md + "\n")
    print(md)
    files = plots(records, Path(args.out)) + following_curve(records, Path(args.out))
    for f in files:
        print("wrote", f)
    if args.readme:
        update_readme(Path(args.readme), md, files)
        print("updated", args.readme)


if __name__ == "__main__":
    main()
