"""Make the README's results table and plots from results/results.jsonl: ``python -m experiments.report``."""
from __future__ import annotations

import argparse
import json
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
# runs that also yield their Step II reading (w/o rectification)
RECTIFIED = ("cott", "cott + MLM warm-up", "cott + MLM warm-up + soft verbalizer")


def _ordered(configs) -> list[str]:
    """Configs in ORDER; ones ORDER does not name follow, sorted, rather than vanishing from the report."""
    rank = {c: i for i, c in enumerate(ORDER)}
    return sorted(set(configs), key=lambda c: (rank.get(c, len(ORDER)), c))


def _rows(records):
    """Expand each record into (config, headline score, record); a cott run also yields its Step II reading."""
    for r in records:
        key = "f1" if "f1" in r["test"]["answer"] else "accuracy"  # relation metrics carry f1 (no_relation left out)
        yield r["config"], r["test"]["answer"][key], r
        if r["config"] in RECTIFIED and "step2" in r["test"]:
            yield f"{r['config']} w/o rectification", r["test"]["step2"][key], r


def _mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def table(records) -> str:
    groups = defaultdict(list)
    for config, score, r in _rows(records):
        groups[(r["task"], r["budget"], config)].append((score, r))
    lines = ["| task | budget | method | seeds | test answer score (mean ± sd) | step acc. | acc. @90% cov. | acc. @80% cov. | step sensitivity | wall s / run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for task, budget in sorted({(t, b) for t, b, _ in groups}):
        for config in _ordered(c for t, b, c in groups if (t, b) == (task, budget)):
            items = groups.get((task, budget, config))
            if not items:
                continue
            m, sd = _mean_sd([100 * s for s, _ in items])
            def opt(key, sub=None):
                if config.endswith("w/o rectification") and key != "step_accuracy":
                    return "–"  # coverage and sensitivity were measured on the rectified answers
                vals = [r["test"][key][sub] if sub else r["test"][key] for _, r in items if key in r["test"]]
                return f"{100 * statistics.mean(vals):.1f}" if vals else "–"
            walls = [r["wall_seconds"] for _, r in items if r.get("wall_seconds") is not None]
            wall = (f"{statistics.mean(walls):.0f}" if walls else "–") + (" †" if len(walls) < len(items) else "")
            lines.append(f"| {task} | {budget} | {config} | {len(items)} | {m:.1f} ± {sd:.1f} | {opt('step_accuracy')} | "
                         f"{opt('accuracy_at_coverage', '0.90')} | {opt('accuracy_at_coverage', '0.80')} | "
                         f"{opt('step_sensitivity')} | {wall} |")
    if any(r.get("wall_seconds") is None for r in records):
        lines.append("\n† mean over the runs with a known wall time: a run interrupted and resumed "
                     "(`resumed_at_step` in the results file) is left out of it.")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def plots(records, out_dir: Path) -> list[Path]:
    """Per task and budget: the answer score by method, and accuracy vs coverage from p(Î|x) for each cott run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    groups = defaultdict(list)
    for config, score, r in _rows(records):
        groups[(r["task"], r["budget"], config)].append(100 * score)
    for task, budget in sorted({(t, b) for t, b, _ in groups}):
        stem = f"{task}_{_slug(budget)}"
        configs = _ordered(c for t, b, c in groups if (t, b) == (task, budget))
        fig, ax = plt.subplots(figsize=(7, 3.4))
        means = [statistics.mean(groups[(task, budget, c)]) for c in configs]
        sds = [_mean_sd(groups[(task, budget, c)])[1] for c in configs]
        ax.bar(configs, means, yerr=sds, color=["#9aa5b1" if not c.startswith("cott") else "#4c6ef5" for c in configs], capsize=4)
        ax.set_ylabel("test score (%)")
        ax.set_ylim(max(0, min(means) - 10), min(100, max(means) + 5))
        ax.set_title(f"{task}, {budget}: score by method (mean ± sd over seeds)", fontsize=10)
        ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        files.append(out_dir / f"{stem}_methods.png")
        fig.savefig(files[-1], dpi=120)
        plt.close(fig)
        runs = [(c, r) for c, _, r in _rows(records) if (r["task"], r["budget"]) == (task, budget) and c in RECTIFIED
                and "accuracy_at_coverage" in r["test"]]
        if runs:
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for config, r in runs:
                curve = r["test"].get("coverage_curve") or sorted((float(c), a) for c, a in r["test"]["accuracy_at_coverage"].items())
                ax.plot([100 * c for c, _ in curve], [100 * a for _, a in curve], marker=".",
                        linestyle="-" if config == "cott" else "--", label=f"{config}, seed {r['seed']}")
            ax.set_xlabel("coverage (%), abstaining on low p(Î|x)")
            ax.set_ylabel("accuracy on covered (%)")
            ax.set_title(f"{task}, {budget}: the reasoning monitor", fontsize=10)
            ax.legend(fontsize=7)
            fig.tight_layout()
            files.append(out_dir / f"{stem}_coverage.png")
            fig.savefig(files[-1], dpi=120)
            plt.close(fig)
    return files


def update_readme(readme: Path, md: str, files: list[Path]) -> None:
    """Replace the block between the results markers of the README with the table and the plots."""
    text = readme.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{readme} has no {begin} ... {end} block")
    images = "\n".join(f"![{f.stem}]({f.as_posix()})" for f in files)
    block = f"{begin}\n<!-- made by python -m experiments.report; do not edit by hand -->\n\n{md}\n\n{images}\n{end}"
    head, rest = text.split(begin, 1)
    readme.write_text(head + block + rest.split(end, 1)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", default="results/results.jsonl")
    p.add_argument("--out", default="results")
    p.add_argument("--readme", default="README.md", help="README whose results block is rewritten ('' to skip)")
    args = p.parse_args(argv)
    records = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    md = table(records)
    Path(args.out, "table.md").write_text(md + "\n")
    print(md)
    files = plots(records, Path(args.out))
    for f in files:
        print("wrote", f)
    if args.readme:
        update_readme(Path(args.readme), md, files)
        print("updated", args.readme)


if __name__ == "__main__":
    main()
