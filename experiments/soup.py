"""Greedy model soup: average the weights of CoTT checkpoints trained from one parent, chosen on validation.

    python -m experiments.soup --checkpoints runs/a/best runs/b/best runs/c/best \\
        --data ../shared/data/conll04/derived_tacred_style --output runs/soup/best

Wortsman et al. (2022), "Model soups": rank the ingredients by their validation score, start from the best, and
add each next one only if the average of the weights scores at least as well on validation. The ingredients must
share task, backbone, template, verbalizers and stored tensors, and should share an initialisation (continuations
of one checkpoint): averaging unrelated fine-tunes gives a broken model. The soup is written as an ordinary
checkpoint whose ``cott.json`` lists every ingredient with its score and training command. Test is not read here.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from safetensors import safe_open

from cott.checkpoint import DELTA, command_line, load_checkpoint, read_config, save_checkpoint
from cott.config import CheckpointConfig
from cott.evaluation import evaluate, headline, known_examples, recorded
from cott.tasks import checkpoint_loader, get_task

logger = logging.getLogger(__name__)

SAME = ("task", "backbone", "template", "answer_head", "answer_verbalizer", "step_verbalizer", "proj_dim",
        "soft_verbalizer", "weights", "max_length", "answer_mode")


def check_compatible(paths: list[Path]) -> list[CheckpointConfig]:
    """The ingredients' configs; a ``ValueError`` naming the first key or tensor set that differs."""
    configs = [read_config(p) for p in paths]
    for path, config in zip(paths[1:], configs[1:]):
        for key in SAME:
            if getattr(config, key) != getattr(configs[0], key):
                raise ValueError(f"{path}: {key!r} differs from {paths[0]}; only checkpoints of one model can be averaged")
    if configs[0].weights == "delta":
        keys = [_delta_keys(p) for p in paths]
        for path, k in zip(paths[1:], keys[1:]):
            if k != keys[0]:
                raise ValueError(f"{path}: stores other tensors than {paths[0]} ({sorted(k ^ keys[0])[:3]} ...)")
    return configs


def _delta_keys(path: Path) -> set[str]:
    with safe_open(str(path / DELTA), framework="pt") as f:
        return set(f.keys())


def average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (in float32, cast back); other tensors from the first."""
    return {k: (sum(s[k].float() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[0].items()}


def greedy_soup(scores: dict[str, float], score_of_average) -> tuple[list[str], list[dict]]:
    """Ingredients in decreasing score; keep each whose addition does not lower ``score_of_average(kept + [it])``."""
    ranked = sorted(scores, key=scores.get, reverse=True)
    kept, best = [ranked[0]], scores[ranked[0]]
    history = [{"path": ranked[0], "score": best, "kept": True, "soup_score": best}]
    for name in ranked[1:]:
        score = score_of_average(kept + [name])
        keep = score >= best
        history.append({"path": name, "score": scores[name], "kept": keep, "soup_score": score})
        logger.info("%s: soup of %d would score %.4f (best %.4f): %s", name, len(kept) + 1, score, best,
                    "kept" if keep else "left out")
        if keep:
            kept, best = kept + [name], score
    return kept, history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, help="two or more checkpoint directories")
    p.add_argument("--data", required=True, help="dataset path (as for training)")
    p.add_argument("--split", default="val", choices=["train", "val"], help="where ingredients are scored (never test)")
    p.add_argument("--output", required=True, help="directory to write the soup checkpoint to")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    paths = [Path(c) for c in args.checkpoints]
    if len(paths) < 2 or len(set(paths)) < len(paths):
        p.error("--checkpoints: give two or more checkpoints, each once")
    try:
        configs = check_compatible(paths)
    except ValueError as err:
        p.error(str(err))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, config, states = None, configs[0], {}
    for path in paths:  # one model is kept to score averages in; the others only as tensors
        loaded, _ = load_checkpoint(path, device)
        # copies: loading an average into the kept model must not change its own ingredient's tensors
        states[str(path)] = {k: v.detach().clone() for k, v in loaded.state_dict().items()}
        model = model or loaded
    model.step_temperature = 1.0  # averaged weights: an ingredient's step calibration does not carry over
    task = get_task(config.task)
    examples = known_examples(model, checkpoint_loader(config, task=task.name)(args.data, args.split), args.split)
    if not examples:
        p.error(f"{args.data}: no {args.split} examples to score the ingredients on")

    results = {}

    def score(names: list[str]) -> float:
        model.load_state_dict(average([states[n] for n in names]))
        with torch.no_grad():  # top-1: the answer modes the soup is chosen by need only the best step
            results[tuple(names)] = evaluate(model, examples, task.kind, config.answer_mode, config.max_length,
                                             args.batch_size, top_k=1, hierarchy=config.hierarchy)
        return headline(results[tuple(names)], task.kind)

    scores = {n: score([n]) for n in states}
    kept, history = greedy_soup(scores, score)
    model.load_state_dict(average([states[n] for n in kept]))
    result = results[tuple(kept)]
    names = {str(p): c for p, c in zip(paths, configs)}
    record = config.to_json()
    meta = {k: record[k] for k in ("task", "kind", "method", "answer_mode", "backbone", "max_length", "description",
                                   "hierarchy") if record[k] is not None}
    meta["training"] = {"command": command_line("experiments.soup", argv),
                        "soup_of": kept, "selection": f"greedy on {args.split} ({len(examples)} examples)"}
    meta["ingredients"] = [h | {"training": dict(names[h["path"]].training), "init_from": names[h["path"]].raw.get("init_from")}
                           for h in history]
    meta["metrics"] = {args.split: recorded(result)}
    if config.weights == "delta":  # store the same tensors as the ingredients do
        stored = _delta_keys(paths[0])
        for n, param in model.mlm.named_parameters():
            param.requires_grad_(n in stored)
    save_checkpoint(model, args.output, meta, weights=config.weights, dtype=config.weights_dtype)
    final = headline(result, task.kind)
    print(json.dumps({"soup_of": kept, args.split: final, "ingredients": history}, indent=2))
    return kept, final


if __name__ == "__main__":
    main()
