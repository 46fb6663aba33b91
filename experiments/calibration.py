"""Is p(Î|x) an honest confidence, and does trusting the step less help the answer?

    python -m experiments.calibration --checkpoint assets/conll04 --data ../shared/data/conll04/derived_tacred_style

On a validation split (the default; selection never reads test) it reports the step's calibration (negative
log-likelihood of the gold step, expected calibration error of p(Î|x) over 10 equal-width bins, the reliability
table), the temperature T that minimises the step NLL (p_T(I|x) ∝ p(I|x)^(1/T)), and the answer score of
rectification p~ = βw p(y|x,Î) + (1 − βw) p(y|x) for a grid of weights β, with w the raw and the temperature-scaled
p(Î|x). β = 1 with the raw w is the paper's rectification, β = 0 the direct answer. For relations it also scores
the rectified answer with p~(no_relation|x) scaled by e^b (a decision threshold: is F1 held back by how often the
model says "no relation"?). ``--plot`` draws the
reliability diagram. ``--write`` stores T in the checkpoint (``step_temperature`` in ``cott.json``), so that every
reading of p(I|x) (the app's reasoning monitor, rectification, accuracy at coverage) uses the scaled one; metrics
recorded before then are stale: read them again with ``train.evaluate --record``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cott.batching import by_prompt_length
from cott.checkpoint import CONFIG, command_line, load_checkpoint, update_config
from cott.evaluation import answer_scores, headline, known_examples
from cott.inference import reason
from cott.metrics import NO_RELATION
from cott.rectify import rectify
from cott.tasks import RELATION, checkpoint_loader, get_task

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
TEMPERATURES = np.geomspace(0.25, 16, 61)
NULL_OFFSETS = np.arange(-2.0, 4.01, 0.5)  # log-scale factors for p~(no_relation|x)


def collect(model, examples, max_length: int, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """p(I|x), p(y|x), p(y|x,Î) and the gold step and answer indices of ``examples``."""
    labels, known = model.answer.labels, model.known_steps()
    examples = by_prompt_length(model, examples, max_length)
    parts = {"p_steps": [], "p_answer": [], "p_answer_step": []}
    for i in tqdm(range(0, len(examples), batch_size), desc="calibration", leave=False):
        r = reason(model, [e.fields for e in examples[i : i + batch_size]], None, max_length)
        for k in parts:
            parts[k].append(r[k])
    out = {k: torch.cat(v) for k, v in parts.items()}
    out["gold"] = torch.tensor([labels.index(e.label) for e in examples])
    out["gold_step"] = torch.tensor([known.index(tuple(e.step)) for e in examples])
    return out


def with_temperature(p_steps: torch.Tensor, t: float) -> torch.Tensor:
    """p_T(I|x) ∝ p(I|x)^(1/T): T > 1 softens an over-confident step distribution; the argmax is unchanged."""
    return (p_steps.clamp_min(1e-30).log() / t).softmax(-1)


def step_nll(p_steps: torch.Tensor, gold_step: torch.Tensor) -> float:
    """Mean negative log-likelihood of the gold step."""
    return -p_steps.gather(1, gold_step[:, None]).clamp_min(1e-30).log().mean().item()


def reliability(confidence: torch.Tensor, correct: torch.Tensor, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error over equal-width confidence bins, and the non-empty bins."""
    edges = torch.linspace(0, 1, bins + 1)
    index = torch.bucketize(confidence, edges[1:-1], right=True)
    rows, ece = [], 0.0
    for b in range(bins):
        m = index == b
        if m.any():
            conf, acc = confidence[m].mean().item(), correct[m].float().mean().item()
            rows.append({"low": edges[b].item(), "high": edges[b + 1].item(), "n": int(m.sum()),
                         "confidence": conf, "accuracy": acc})
            ece += m.float().mean().item() * abs(conf - acc)
    return ece, rows


def fit_temperature(p_steps: torch.Tensor, gold_step: torch.Tensor) -> float:
    """The temperature on a log-spaced grid (0.25 to 16) with the lowest step NLL."""
    return float(min(TEMPERATURES, key=lambda t: step_nll(with_temperature(p_steps, t), gold_step)))


def calibration(data: dict[str, torch.Tensor], labels: list[str], kind: str) -> dict:
    """The report of the module docstring from ``collect``'s tensors."""
    p_steps, gold_step = data["p_steps"], data["gold_step"]
    t = fit_temperature(p_steps, gold_step)
    gold = data["gold"].tolist()

    def score(p):
        return headline({"answer": answer_scores(gold, p.argmax(-1).tolist(), labels, kind)}, kind)

    def step_report(p):
        w, hat = p.max(-1)
        ece, rows = reliability(w, hat == gold_step)
        weights = {f"{b:g}": score((b * w)[:, None] * data["p_answer_step"] + (1 - b * w)[:, None] * data["p_answer"])
                   for b in BETAS}
        return {"nll": step_nll(p, gold_step), "ece": ece, "mean_confidence": w.mean().item(),
                "reliability": rows, "answer_by_beta": weights}

    out = {"examples": len(gold), "score": "f1" if kind == RELATION else "accuracy",
           "step_accuracy": (p_steps.argmax(-1) == gold_step).float().mean().item(), "temperature": t,
           "raw": step_report(p_steps), "scaled": step_report(with_temperature(p_steps, t))}
    if kind == RELATION and NO_RELATION in labels:
        p, null = rectify(p_steps.max(-1).values, data["p_answer_step"], data["p_answer"]), labels.index(NO_RELATION)

        def scaled(b):
            q = p.clone()
            q[:, null] *= float(np.exp(b))
            return q
        out["answer_by_null_offset"] = {f"{b:g}": score(scaled(b)) for b in NULL_OFFSETS}
    return out


def plot(report: dict, path: str, title: str) -> None:
    """Reliability diagram of p(Î|x), raw and temperature-scaled, with the bins' sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for key, name in (("raw", "p(Î|x)"), ("scaled", f"T = {report['temperature']:.2f}")):
        rows = report[key]["reliability"]
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                label=f"{name} (ECE {report[key]['ece']:.3f})")
    ax.set(xlabel="confidence in the generated step", ylabel="step accuracy", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"], help="never test: this informs choices")
    p.add_argument("--plot", help="write the reliability diagram to this PNG")
    p.add_argument("--write", action="store_true", help="store the fitted temperature in the checkpoint's cott.json")
    args = p.parse_args(argv)
    model, config = load_checkpoint(args.checkpoint, "cuda" if torch.cuda.is_available() else "cpu")
    if not model.num_step_slots:
        p.error(f"{args.checkpoint} has no Step I (method {config.method!r}): nothing to calibrate")
    task = get_task(config.task)
    examples = known_examples(model, checkpoint_loader(config, task=task.name)(args.data, args.split), args.split)
    if not examples:
        p.error(f"{args.data}: no {args.split} examples the checkpoint has labels for")
    model.step_temperature = 1.0  # fit on the raw distribution, whatever an earlier calibration stored
    with torch.no_grad():
        data = collect(model, examples, config.max_length)
    result = calibration(data, model.answer.labels, task.kind)
    result["stored_temperature"] = config.step_temperature
    if args.write:
        stored = {"split": args.split, "examples": result["examples"], "temperature": result["temperature"],
                  **{f"{k}_{m}": result[k][m] for k in ("raw", "scaled") for m in ("nll", "ece")},
                  "command": command_line("experiments.calibration", argv)}
        update_config(args.checkpoint, step_temperature=result["temperature"], calibration=stored)
        print(f"wrote step_temperature {result['temperature']:.3f} to {Path(args.checkpoint) / CONFIG}; metrics "
              "recorded before are stale: read them again with python -m train.evaluate --record", file=sys.stderr)
    if args.plot:
        plot(result, args.plot, f"{config.task}, {args.split}: step calibration")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
