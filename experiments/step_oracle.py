"""Where a CoTT checkpoint's errors come from: answers when Step I is right or wrong, and Step II given the gold step.

    python -m experiments.step_oracle --checkpoint assets/clinc150 --data ../shared/data/clinc150

Injecting the gold step into ``[C]`` is an upper bound on what a better Step I could give this Step II.
"""
from __future__ import annotations

import argparse
import json

import torch
from tqdm.auto import tqdm

from cott.batching import by_prompt_length
from cott.checkpoint import load_checkpoint
from cott.evaluation import answer_scores, headline, known_examples
from cott.inference import reason
from cott.tasks import RELATION, checkpoint_loader, get_task


def step_oracle(model, examples, kind: str, max_length: int, batch_size: int = 128) -> dict:
    """Scores of the rectified answer, of p(y|x), and of Step II with the gold step; error counts by step."""
    labels, known = model.answer.labels, model.known_steps()
    examples = by_prompt_length(model, examples, max_length)
    gold, rectified, direct, oracle, step_right = [], [], [], [], []
    with torch.no_grad():
        for i in tqdm(range(0, len(examples), batch_size), desc="step oracle", leave=False):
            chunk = examples[i : i + batch_size]
            fields = [e.fields for e in chunk]
            r = reason(model, fields, None, max_length)
            injected = [model.template.encode(model.tokenizer, e.fields, model.step_phrase(tuple(e.step)), max_length)
                        for e in chunk]  # Step II alone with the gold step: Step I was read above
            gold += [labels.index(e.label) for e in chunk]
            rectified += r["p_rectified"].argmax(-1).tolist()
            direct += r["p_answer"].argmax(-1).tolist()
            oracle += model(**model.collate(injected))["answer_logits"].argmax(-1).tolist()
            step_right += [known[s] == tuple(e.step) for s, e in zip(r["step_hat"].tolist(), chunk)]

    def score(pred):
        return headline({"answer": answer_scores(gold, pred, labels, kind)}, kind)

    errors = [p != y for p, y in zip(rectified, gold)]
    return {
        "examples": len(gold), "score": "f1" if kind == RELATION else "accuracy",
        "rectified": score(rectified), "direct": score(direct), "gold_step_injected": score(oracle),
        "step_accuracy": sum(step_right) / len(gold),
        "errors": sum(errors), "errors_with_a_wrong_step": sum(e and not s for e, s in zip(errors, step_right)),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    args = p.parse_args(argv)
    model, config = load_checkpoint(args.checkpoint, "cuda" if torch.cuda.is_available() else "cpu")
    task = get_task(config.task)
    if not model.num_step_slots:
        raise SystemExit(f"{args.checkpoint} has no Step I (method {config.method!r}): nothing to analyse")
    examples = known_examples(model, checkpoint_loader(config, task=task.name)(args.data, args.split), args.split)
    result = step_oracle(model, examples, task.kind, config.max_length)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
