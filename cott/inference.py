"""Two-pass CoTT inference: Step I writes the step and answers directly, Step II answers given a step."""
from __future__ import annotations

from typing import Sequence

import torch

from .config import MAX_LENGTH
from .rectify import rectify, topk_marginal


def _encode(model, fields, step, max_length):
    return model.template.encode(model.tokenizer, fields, step, max_length)


@torch.inference_mode()
def reason(
    model,
    inputs: Sequence[dict],
    steps: Sequence[Sequence[str] | None] | None = None,
    max_length: int = MAX_LENGTH,
    top_k: int = 1,
) -> dict[str, torch.Tensor]:
    """Run Step I and Step II for a batch of inputs (their text fields).

    ``steps[i]`` forces the words written into ``[C]`` for input ``i`` (a known step's phrase or any
    text), ``None`` uses the generated step Î. With ``top_k`` > 1 the top-k steps are injected too, in the
    same Step II forward, for the exact top-k marginal. Returns probabilities as tensors:
    ``p_answer`` p(y|x); and with steps ``p_steps`` p(I|x), ``step_hat`` Î, ``p_step_hat`` p(Î|x),
    ``p_answer_step`` p(y|x,Î or the forced step), ``p_rectified``, and with top-k ``topk``,
    ``p_answer_topk`` (N, k, L), ``p_marginal``; ``truncated``, per input, whether max_length cut its text (in
    Step I or in the Step II prompt of its step).
    """
    model.eval()
    first = [_encode(model, f, None, max_length) for f in inputs]
    out1 = model(**model.collate(first))
    result = {"p_answer": out1["answer_logits"].float().softmax(-1), "truncated": [e.truncated for e in first]}
    if not model.num_step_slots:
        result["p_rectified"] = result["p_answer"]
        return result
    p_steps = model.step_distribution(out1["step_logits"].float())
    known = model.known_steps()
    top_k = max(1, min(top_k, len(known)))
    p_top, top = p_steps.topk(top_k, dim=-1)
    step_hat = top[:, 0]
    injected = []
    for i, f in enumerate(inputs):
        chosen = steps[i] if steps is not None and steps[i] is not None else None
        injected.append(list(chosen) if chosen is not None else model.step_phrase(known[step_hat[i]]))
    encodings = [_encode(model, f, s, max_length) for f, s in zip(inputs, injected)]
    if top_k > 1:
        encodings += [_encode(model, f, model.step_phrase(known[j]), max_length) for f, row in zip(inputs, top.tolist()) for j in row]
    out2 = model(**model.collate(encodings))
    p2 = out2["answer_logits"].float().softmax(-1)
    n = len(inputs)
    result["truncated"] = [a or b.truncated for a, b in zip(result["truncated"], encodings)]
    result.update(p_steps=p_steps, step_hat=step_hat, p_step_hat=p_top[:, 0], p_answer_step=p2[:n], topk=top)
    weight = p_top[:, 0].clone()
    if steps is not None:  # a forced step weighs by its own probability when it is a known step
        phrases = {tuple(model.step_phrase(s)): j for j, s in enumerate(known)}
        for i, s in enumerate(steps):
            if s is not None:
                j = phrases.get(tuple(s))
                weight[i] = p_steps[i, j] if j is not None else float("nan")
    result["p_step_weight"] = weight
    result["p_rectified"] = rectify(weight, p2[:n], result["p_answer"])
    if top_k > 1:
        p_topk_answers = p2[n:].view(n, top_k, -1)
        result["p_answer_topk"] = p_topk_answers
        result["p_marginal"] = topk_marginal(p_top, p_topk_answers, result["p_answer"])
    return result


@torch.inference_mode()
def answer_given_steps(model, pairs: Sequence[tuple[dict, Sequence[str]]], max_length: int = MAX_LENGTH,
                       batch_size: int = 64) -> torch.Tensor:
    """p(y|x,I) for (text fields, step words) pairs: (N, L), from batched Step II passes."""
    model.eval()
    encodings = [_encode(model, f, s, max_length) for f, s in pairs]
    probs = []
    for start in range(0, len(encodings), batch_size):
        out = model(**model.collate(encodings[start : start + batch_size]))
        probs.append(out["answer_logits"].float().softmax(-1))
    return torch.cat(probs)


def sweep(model, inputs: Sequence[dict], max_length: int = MAX_LENGTH, batch_size: int = 64) -> torch.Tensor:
    """p(y|x,I) for every known step I: (N, steps, L), from batched Step II passes."""
    known = model.known_steps()
    if not known:
        raise ValueError("this model has no intermediate step to sweep")
    pairs = [(f, model.step_phrase(s)) for f in inputs for s in known]
    return answer_given_steps(model, pairs, max_length, batch_size).view(len(inputs), len(known), -1)
