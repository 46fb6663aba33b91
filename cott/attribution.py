"""Word-level attributions ("why this step?"): how much each word of the text moves p(Î|x) in Step I, the answer
under the step p(y|x,I) in Step II, and optionally the direct answer p(y|x), computed with Captum.

Methods (all over the main text's tokens only: the template, the masks, the step and a relation's ``@``/``#``
markers are never attributed nor removed; sub-tokens are summed into whitespace-separated words):

- ``occlusion``: Captum's ``FeatureAblation`` with one feature per word; a word's score is how much the probability
  falls when the word is removed from the prompt (leave-one-word-out; one batched forward per word, no gradients).
- ``ig``: Captum's ``IntegratedGradients`` over the word embeddings, from a reference where the text's tokens are
  [PAD]; the scores of a text sum to p(x) - p(reference) up to the integral's error, which saturated probabilities
  make large at few steps (benchmarks/attribution.py measures it: a median 0.40 at 16 steps, 0.03 at 32).
- ``grad_x_input``: Captum's ``InputXGradient`` over the word embeddings (gradient × embedding): one backward
  pass, the simple baseline.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace

import torch

from .inference import reason
from .steps import join
from .template import Encoding
from .words import Parsed, parse

METHODS = {
    "occlusion": "leave-one-word-out: how much the probability falls when the word is removed (Captum FeatureAblation)",
    "ig": "integrated gradients over the word embeddings from a [PAD] reference (Captum IntegratedGradients)",
    "grad_x_input": "gradient × word embedding, one backward pass (Captum InputXGradient)",
}
DEFAULT_METHOD = "ig"  # explain()'s and the demo's: see the deletion curves in results/README.md
GRADIENT_METHODS = ("ig", "grad_x_input")
IG_STEPS = 32  # integrated-gradients steps (Gauss-Legendre): the sum within ~0.03 of its integral, a text under 1 s
ROWS_PER_FORWARD = 64  # prompts per forward pass: bounds the memory of IG's and occlusion's expanded batches


@dataclass
class Explanation:
    """Per-word attributions of one input. Score lists follow ``words``; a positive score supports the target."""

    text: str
    words: list[str]  # the text's words (for relations the marked sentence's, without the @ / # markers)
    roles: list[str]  # "subject", "object" or "" per word
    seen: list[bool]  # whether the prompt kept the word (a long text is cut to the model's max length)
    method: str
    answer: str  # argmax p(y|x,step) (p(y|x) for a model without a step)
    answer_prob: float
    answer_scores: list[float]
    step: str | None = None  # Î, the step explained in Step I
    step_prob: float | None = None  # p(Î|x)
    step_scores: list[float] | None = None
    answer_step: str | None = None  # the step the answer is read under: Î or the injected one
    direct_answer: str | None = None  # argmax p(y|x), with direct=True
    direct_prob: float | None = None
    direct_scores: list[float] | None = None


@dataclass
class Prompt:
    """One filled prompt and its target: ``kind`` "step" reads p(I=target|x) at the [C] masks, "answer" p(y=target)
    at [A]. ``slots`` are the positions of the attributable text tokens, ``word`` each slot's word index."""

    enc: Encoding
    kind: str
    target: int
    slots: list[int] = field(default_factory=list)
    word: list[int] = field(default_factory=list)

    def positions(self, words) -> list[int]:
        """The slots of these words (what removing them removes)."""
        chosen = set(words)
        return [s for s, w in zip(self.slots, self.word) if w in chosen]


# ---- prompts, deletion and probabilities --------------------------------------------------------
def delete(enc: Encoding, positions) -> Encoding:
    """The prompt with the tokens at ``positions`` removed (the answer and step masks move with the rest)."""
    drop = sorted(set(positions))
    if not drop:
        return enc

    def shift(p: int) -> int:
        return p - bisect.bisect_left(drop, p)

    gone = set(drop)
    return replace(enc, input_ids=[t for i, t in enumerate(enc.input_ids) if i not in gone],
                   answer_pos=shift(enc.answer_pos), step_pos=[shift(p) for p in enc.step_pos], text_pos=[], text_index=[])


def _read(model, out: dict, kind: str, targets: torch.Tensor) -> torch.Tensor:
    """p(target) per row of a forward's output: the joint step distribution, or the answer distribution."""
    if kind == "step":
        probs = model.step_distribution(out["step_logits"].float())
    else:
        probs = out["answer_logits"].float().softmax(-1)
    return probs.gather(1, targets[:, None])[:, 0]


@torch.no_grad()
def target_probs(model, encodings: list[Encoding], kind: str, targets: list[int]) -> torch.Tensor:
    """p(target) for each prompt, in batched forwards."""
    model.eval()
    out = []
    for start in range(0, len(encodings), ROWS_PER_FORWARD):
        batch = model.collate(encodings[start : start + ROWS_PER_FORWARD])
        t = torch.tensor(targets[start : start + ROWS_PER_FORWARD], device=batch["input_ids"].device)
        out.append(_read(model, model(**batch), kind, t))
    return torch.cat(out).cpu()


# ---- the three methods ---------------------------------------------------------------------------
def _gradient_scores(model, prompts: list[Prompt], method: str) -> list[list[float]]:
    """Per-slot scores of IG or gradient × input (summed over the embedding), one batch of prompts. Captum works on
    the word embeddings passed to the model (``inputs_embeds``): no hook on the model, so concurrent forwards of the
    same model (the demo's) are never disturbed."""
    batch = model.collate([p.enc for p in prompts])
    kind = prompts[0].kind
    targets = torch.tensor([p.target for p in prompts], device=batch["input_ids"].device)
    embed = model.masked_lm().get_input_embeddings()

    def forward(embeds, attention_mask, answer_pos, step_pos, targets):
        return _read(model, model(None, attention_mask, answer_pos, step_pos, inputs_embeds=embeds), kind, targets)

    args = (batch["attention_mask"], batch["answer_pos"], batch["step_pos"], targets)
    with torch.no_grad():
        inputs = embed(batch["input_ids"])
        reference = batch["input_ids"].clone()
        for i, p in enumerate(prompts):
            reference[i, p.slots] = model.tokenizer.pad_token_id
        reference = embed(reference)
    inputs.requires_grad_()
    from captum.attr import InputXGradient, IntegratedGradients  # here: importing the pipeline needs no Captum

    with torch.enable_grad():
        if method == "ig":
            attr = IntegratedGradients(forward).attribute(inputs, reference, additional_forward_args=args,
                                                          n_steps=IG_STEPS, internal_batch_size=ROWS_PER_FORWARD)
        else:
            attr = InputXGradient(forward).attribute(inputs, additional_forward_args=args)
    per_token = attr.sum(-1).detach().float().cpu()
    return [per_token[i, p.slots].tolist() for i, p in enumerate(prompts)]


def _occlusion_scores(model, prompts: list[Prompt]) -> list[list[float]]:
    """Per-slot scores of leave-one-word-out: Captum ablates one word (all its tokens) at a time; the forward drops
    the ablated tokens from the prompt."""
    width = max(1, max(len(p.slots) for p in prompts))
    n_words = max([w + 1 for p in prompts for w in p.word], default=1)
    presence = torch.ones(len(prompts), width)
    mask = torch.full((len(prompts), width), n_words, dtype=torch.long)  # padding: a group of its own, a no-op
    for i, p in enumerate(prompts):
        mask[i, : len(p.word)] = torch.tensor(p.word, dtype=torch.long)
    kind = prompts[0].kind

    def forward(presence, rows):
        encs = [delete(prompts[r].enc, [s for s, keep in zip(prompts[r].slots, row) if keep < 0.5])
                for r, row in zip(rows.tolist(), presence.tolist())]
        return target_probs(model, encs, kind, [prompts[r].target for r in rows.tolist()])

    from captum.attr import FeatureAblation  # here: importing the pipeline needs no Captum

    per_eval = max(1, ROWS_PER_FORWARD // len(prompts))
    attr = FeatureAblation(forward).attribute(presence, baselines=0.0, additional_forward_args=(torch.arange(len(prompts)),),
                                              feature_mask=mask, perturbations_per_eval=per_eval)
    return [attr[i, : len(p.slots)].tolist() for i, p in enumerate(prompts)]


def quantized(model) -> bool:
    """Whether some layer is quantized (int8): no gradients flow through it."""
    return any("quantized" in type(m).__module__ for m in model.modules())


def default_method(model) -> str:
    """``DEFAULT_METHOD``, or occlusion where gradients do not fit (a quantized model)."""
    return "occlusion" if quantized(model) else DEFAULT_METHOD


def check_method(model, method: str) -> None:
    """ValueError for an unknown method, or a gradient method on a quantized model (its gradients would be 0)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if method in GRADIENT_METHODS and quantized(model):
        raise ValueError(f"{method} needs gradients, which a quantized (int8) model does not give; use 'occlusion'")


def word_scores(model, prompts: list[Prompt], method: str, n_words: list[int]) -> list[list[float]]:
    """Each prompt's scores per word: summed over a word's tokens (IG, gradient × input) or the word's own
    ablation (occlusion, which gives every token of a word the same score). Prompts of one kind."""
    check_method(model, method)
    model.eval()  # no dropout: the same text gets the same scores
    out = []
    chunk = max(1, ROWS_PER_FORWARD // IG_STEPS) if method == "ig" else ROWS_PER_FORWARD
    for start in range(0, len(prompts), chunk):
        part = prompts[start : start + chunk]
        slot_scores = _occlusion_scores(model, part) if method == "occlusion" else _gradient_scores(model, part, method)
        for p, scores, n in zip(part, slot_scores, n_words[start : start + chunk]):
            words = [0.0] * n
            seen = set()
            for w, s in zip(p.word, scores):
                if method != "occlusion":
                    words[w] += s
                elif w not in seen:
                    words[w], seen = s, seen | {w}
            out.append(words)
    return out


# ---- one input's prompts --------------------------------------------------------------------------
def prompt(model, fields: dict, parsed: Parsed, step, kind: str, target: int, max_length: int) -> Prompt:
    """The prompt (Step I when ``step`` is None) with its attributable slots."""
    enc = model.template.encode(model.tokenizer, fields, step, max_length, text_ids=parsed.text_ids)
    pairs = [(pos, parsed.word_of_token[i]) for pos, i in zip(enc.text_pos, enc.text_index) if parsed.word_of_token[i] >= 0]
    return Prompt(enc, kind, target, [p for p, _ in pairs], [w for _, w in pairs])


def prompts(pipe, fields: list[dict], steps: list, direct: bool = False) -> tuple[list[Parsed], dict, dict]:
    """Each input's words, the reasoning ``reason`` gives it, and the prompts to explain, by target: "step"
    (p(Î|x), Step I), "answer" (p(ŷ|x,step), Step II under Î or ``steps[i]``), "direct" (p(y|x), Step I)."""
    model = pipe.model
    parsed = [parse(model, f) for f in fields]
    r = reason(model, fields, steps if any(s is not None for s in steps) else None, pipe.max_length)
    known = model.known_steps()
    jobs: dict[str, list[Prompt]] = {}
    for i, (f, p) in enumerate(zip(fields, parsed)):
        if pipe.has_steps:
            step_hat = int(r["step_hat"][i])
            words = steps[i] if steps[i] is not None else model.step_phrase(known[step_hat])
            jobs.setdefault("step", []).append(prompt(model, f, p, None, "step", step_hat, pipe.max_length))
            target = int(r["p_answer_step"][i].argmax())
            jobs.setdefault("answer", []).append(prompt(model, f, p, words, "answer", target, pipe.max_length))
        if direct or not pipe.has_steps:
            target = int(r["p_answer"][i].argmax())
            jobs.setdefault("direct", []).append(prompt(model, f, p, None, "answer", target, pipe.max_length))
    return parsed, r, jobs


def explain(pipe, inputs, step=None, method: str | None = None, direct: bool = False, batch_size: int = 32):
    """``CoTTPipeline.explain``: one input or a list, ``step`` one for all or one per input (None: Î)."""
    single, items, steps = pipe.with_steps(inputs, step)
    out = []
    for start in range(0, len(items), batch_size):
        words = [pipe._step_words(s) if s is not None else None for s in steps[start : start + batch_size]]
        out += _explain(pipe, items[start : start + batch_size], words, method, direct)
    return out[0] if single else out


def _explain(pipe, inputs: list, steps: list, method: str | None, direct: bool) -> list[Explanation]:
    """Explanations of a batch of inputs (``steps[i]``: the step words injected for input i, or None for Î)."""
    model, known = pipe.model, pipe.model.known_steps()
    method = method or default_method(model)
    check_method(model, method)
    fields = [pipe.fields(x) for x in inputs]
    parsed, r, jobs = prompts(pipe, fields, steps, direct)
    n_words = [len(p.words) for p in parsed]
    scores = {k: word_scores(model, v, method, n_words) for k, v in jobs.items()}
    out = []
    for i, (f, p) in enumerate(zip(fields, parsed)):
        seen = set().union(*(jobs[k][i].word for k in jobs))
        exp = Explanation(f["text"], p.words, p.roles, [w in seen for w in range(len(p.words))], method, "", 0.0, [])
        if "direct" in jobs:
            j = jobs["direct"][i].target
            exp.direct_answer, exp.direct_prob = pipe.labels[j], float(r["p_answer"][i, j])
            exp.direct_scores = scores["direct"][i]
        if pipe.has_steps:
            j, y = jobs["step"][i].target, jobs["answer"][i].target
            exp.step, exp.step_prob, exp.step_scores = pipe.steps[j], float(r["p_steps"][i, j]), scores["step"][i]
            phrase = list(steps[i]) if steps[i] is not None else model.step_phrase(known[j])
            exp.answer_step = pipe.step_space.label(phrase) or join(phrase)
            exp.answer, exp.answer_prob = pipe.labels[y], float(r["p_answer_step"][i, y])
            exp.answer_scores = scores["answer"][i]
        else:
            exp.answer, exp.answer_prob, exp.answer_scores = exp.direct_answer, exp.direct_prob, exp.direct_scores
        out.append(exp)
    return out
