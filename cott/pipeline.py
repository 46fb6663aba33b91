"""Inference API: ``CoTTPipeline.from_pretrained(path)("text")``, step injection and step sweeps."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import attribution, counterfactual, monitor
from .checkpoint import CheckpointError, load_checkpoint
from .config import CheckpointConfig
from .data import relation_example
from .inference import reason, sweep
from .quantization import quantize as quantize_model
from .relation_input import mark_mentions, parse_marked
from .steps import StepSpace, final_distribution, join, split
from .tasks import RELATION

MAX_INPUT_CHARS = 100_000  # inputs beyond this are refused; the text slot is truncated to max_length anyway


@dataclass
class Prediction:
    """One input's two-step reasoning. Probability lists follow ``labels`` and ``steps``."""

    text: str
    labels: list[str]
    answer: str  # argmax of p_final
    p_rectified: list[float]  # p~(y|x); for an injected free-text step, p(y|x,step)
    p_answer: list[float]  # p(y|x), Step I's direct answer
    steps: list[str]
    step: str | None = None  # Î or the injected step, in its label form ("a | b" for several slots)
    step_words: str | None = None  # the words written into [C]
    step_prob: float | None = None  # p(Î|x), or p(step|x) of an injected known step
    injected: bool = False
    p_steps: list[float] | None = None  # p(I|x)
    p_answer_step: list[float] | None = None  # p(y|x,Î) or p(y|x,step)
    p_marginal: list[float] | None = None  # top-k marginal, the remaining mass answered directly (top_k > 1)
    scope_score: float | None = None  # the checkpoint's out-of-scope signal (higher = more in scope), if it has one
    out_of_scope: bool | None = None  # scope_score below the checkpoint's fitted threshold
    p_final: list[float] | None = None  # the distribution ``answer`` is the argmax of (the answer mode's, constrained)
    answer_mode: str | None = None  # the mode p_final is of: the checkpoint's, "step2" under an injected step
    truncated: bool = False  # the checkpoint's max_length cut the text (only the text is ever cut, never a step or mask)

    def top(self, n: int = 5, which: str = "p_rectified") -> list[tuple[str, float]]:
        probs = getattr(self, which)
        order = sorted(range(len(probs)), key=lambda i: -probs[i])[:n]
        return [(self.labels[i], probs[i]) for i in order]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sweep:
    """p(y|x,I) for every known step I (rows follow ``steps``, columns ``labels``)."""

    text: str
    steps: list[str]
    labels: list[str]
    probs: list[list[float]]
    p_steps: list[float]

    def answers(self) -> list[tuple[str, str, float]]:
        """(step, answer, p(answer|x,step)) for every step."""
        out = []
        for step, row in zip(self.steps, self.probs):
            j = max(range(len(row)), key=row.__getitem__)
            out.append((step, self.labels[j], row[j]))
        return out


class CoTTPipeline:
    """Loads a checkpoint once and answers texts with two-step reasoning, batched."""

    def __init__(self, model, config: CheckpointConfig, max_length: int | None = None):
        self.model = model
        self.config = config
        self.max_length = max_length or config.max_length
        self.kind = config.kind
        self.labels = list(model.answer.labels)
        self.step_space = StepSpace(model)
        self.steps = self.step_space.names

    @classmethod
    def from_pretrained(cls, path_or_id: str, device: str | None = None, quantize: str | None = None,
                        **kwargs) -> "CoTTPipeline":
        """Load from a local checkpoint directory or a Hugging Face Hub repository id (``owner/name``, downloaded
        through huggingface_hub's cache; with ``HF_HUB_OFFLINE=1`` only the cache is read). A hub id that cannot be
        had (no network, no such repository, not cached offline) raises ``CheckpointError`` saying so.
        ``quantize="int8"``: the encoder in dynamic int8, CPU only (``cott.quantization``)."""
        path = Path(path_or_id).expanduser()
        if not path.exists() and "/" in path_or_id and not path_or_id.startswith((".", "/", "~")):
            from huggingface_hub import errors, snapshot_download

            # HF_HUB_OFFLINE read now, not only when huggingface_hub was imported: then only its cache is read
            offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
            try:
                path = Path(snapshot_download(path_or_id, local_files_only=offline))
            except (OSError, ValueError, errors.HfHubHTTPError) as err:  # ConnectionError and LocalEntryNotFoundError
                if isinstance(err, errors.RepositoryNotFoundError):  # are OSErrors; HFValidationError a ValueError
                    why = "no such repository, or a private or gated one: set HF_TOKEN"
                elif isinstance(err, errors.HFValidationError):
                    why = "not a repository id owner/name"
                else:
                    why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else "no network?"
                raise CheckpointError(f"could not download {path_or_id} from the Hugging Face Hub ({why}), and it is "
                                      f"not a local directory: {' '.join(str(err).split())}") from None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, config = load_checkpoint(path, device)
        return cls(quantize_model(model, quantize) if quantize else model, config, **kwargs)

    @property
    def has_steps(self) -> bool:
        return bool(self.steps)

    @property
    def num_step_slots(self) -> int:
        """How many parts a step has (one per [C] slot of the template; "a | b" for two)."""
        return self.model.num_step_slots

    @property
    def answer_mode(self) -> str:
        """Which distribution gives the answer (``cott.steps.MODES``): the checkpoint's ``answer_mode``."""
        return self.config.answer_mode

    @property
    def step_answers(self) -> dict[str, list[str]]:
        """Step label -> the answers consistent with it (from training data; empty when not recorded)."""
        return dict(self.config.step_answers)

    def card(self) -> dict:
        """What the app's About tab shows."""
        c = self.config
        card = {"task": c.task, "kind": c.kind, "method": c.method, "backbone": c.backbone, "template": c.template,
                "max_length": c.max_length, "metrics": c.metrics, "training": c.training,
                "description": c.description, "calibration": c.calibration}
        card |= {k: c.raw[k] for k in ("init_from", "ingredients") if k in c.raw}  # the weights' history
        card["answer_words"] = self.model.answer.words
        if self.model.step is not None:
            card["step_words"] = self.model.step.words
        return card

    # ---- inputs ---------------------------------------------------------------------------
    def fields(self, x) -> dict[str, str]:
        """One input's text fields as the model reads them; ValueError / TypeError for an input it refuses."""
        if isinstance(x, dict):
            if "token" in x:
                return relation_example(x["token"], x).fields
            fields = {k: str(v) for k, v in x.items() if k in ("text", "subj", "obj")}
            if self.kind == RELATION and fields.get("subj") and fields.get("obj"):
                fields["marked"] = mark_mentions(fields.get("text", ""), fields["subj"], fields["obj"])
        elif isinstance(x, str):
            fields = parse_marked(x) if self.kind == RELATION else {"text": x}
        else:
            raise TypeError(f"an input is a string or a dict, not {type(x).__name__}")
        if not fields.get("text", "").strip():
            raise ValueError("the input text is empty")
        if len(fields["text"]) > MAX_INPUT_CHARS:
            raise ValueError(f"the input text has {len(fields['text']):,} characters; the limit is {MAX_INPUT_CHARS:,}")
        if self.kind == RELATION and not (fields.get("subj") and fields.get("obj")):
            raise ValueError("a relation input needs a subject and an object: mark them as [[subject]] and {{object}}")
        return fields

    def _step_words(self, step) -> list[str]:
        """The words written into [C] for a user's step: a known step (label or words) or free text."""
        return list(self.step_space.parse(step)[1])

    # ---- inference ------------------------------------------------------------------------
    def with_steps(self, inputs, step) -> tuple[bool, list, list]:
        """One input or a list, and ``step`` for all or one per input (None: Î): (single, inputs, a step each)."""
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        steps = step if isinstance(step, list) and not single else [step] * len(items)
        if len(steps) != len(items):
            raise ValueError("give one step per input")
        if any(s is not None for s in steps) and not self.has_steps:
            raise ValueError("this model has no intermediate step to inject")
        return single, items, steps

    def __call__(self, inputs, step=None, top_k: int = 1, batch_size: int = 32, constrained: bool = False):
        """Predict for one input or a list; ``step`` injects a step (one, or one per input; None = Î).

        With ``constrained`` the answer is chosen among the answers consistent with the step (Î or the
        injected one; ``step_answers``): a view that always follows the step, never used in training.
        """
        if constrained and not self.step_answers:
            raise ValueError("this checkpoint records no step-answer table to constrain the answer with")
        single, items, steps = self.with_steps(inputs, step)
        out = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            fields = [self.fields(x) for x in chunk]
            words = [self._step_words(s) if s is not None else None for s in steps[start : start + batch_size]]
            r = reason(self.model, fields, words if any(words) else None, self.max_length, top_k)
            out.extend(self._predictions(fields, words, r, constrained))
        return out[0] if single else out

    def _scope(self, r: dict, i: int) -> tuple[float | None, bool | None]:
        """The out-of-scope signal stored in the checkpoint (``experiments.out_of_scope --write``) for input ``i``."""
        fit = self.config.out_of_scope
        if not fit:
            return None, None
        p_step = r["p_step_hat"][i : i + 1] if "p_step_hat" in r else None
        score = float(monitor.signal_scores(r["p_rectified"][i : i + 1], r["p_answer"][i : i + 1], p_step)[fit["signal"]])
        return score, score < fit["threshold"]

    def _predictions(self, fields, words, r, constrained: bool = False) -> list[Prediction]:
        preds = []
        for i, f in enumerate(fields):
            p_answer = r["p_answer"][i].tolist()
            scope = self._scope(r, i) if words[i] is None else (None, None)
            if not self.has_steps:
                preds.append(Prediction(f["text"], self.labels, self.labels[max(range(len(p_answer)), key=p_answer.__getitem__)],
                                        p_answer, p_answer, [], p_final=p_answer, answer_mode="direct",
                                        scope_score=scope[0], out_of_scope=scope[1],
                                        truncated=r["truncated"][i]))
                continue
            injected = words[i] is not None
            weight = float(r["p_step_weight"][i])
            if injected:
                phrase = list(words[i])
                label = self.step_space.label(phrase) or join(phrase)
            else:
                label = self.steps[int(r["step_hat"][i])]
                phrase = list(self.step_space.words[int(r["step_hat"][i])])
            p_step = r["p_answer_step"][i].tolist()
            # An injected free-text step has no p(step|x) to weigh it by: its rectified form is Step II's.
            p_rect = p_step if math.isnan(weight) else r["p_rectified"][i].tolist()
            p_marginal = r["p_marginal"][i].tolist() if "p_marginal" in r else None
            # A user who injects a step wants the answer under that step, not one hedged back towards Î.
            mode = "step2" if injected else self.answer_mode
            p_final = final_distribution({"p_answer": p_answer, "p_answer_step": p_step, "p_rectified": p_rect,
                                          "p_marginal": p_marginal}, mode)
            allowed = self.step_answers.get(label) if constrained else None
            if allowed:
                p_final = counterfactual.constrain(torch.tensor(p_final), [self.labels.index(a) for a in allowed]).tolist()
            preds.append(
                Prediction(
                    text=f["text"],
                    labels=self.labels,
                    answer=self.labels[max(range(len(p_final)), key=p_final.__getitem__)],
                    p_rectified=p_rect,
                    p_answer=p_answer,
                    steps=self.steps,
                    step=label,
                    step_words=join(phrase),
                    step_prob=None if math.isnan(weight) else weight,
                    injected=injected,
                    p_steps=r["p_steps"][i].tolist(),
                    p_answer_step=p_step,
                    p_marginal=p_marginal,
                    p_final=p_final,
                    answer_mode=mode,
                    scope_score=scope[0],
                    out_of_scope=scope[1],
                    truncated=r["truncated"][i],
                )
            )
        return preds

    def explain(self, inputs, step=None, method: str | None = None, direct: bool = False, batch_size: int = 32):
        """Per-word attributions (``cott.attribution``) to p(Î|x), to the answer under Î or ``step``, and with
        ``direct`` to p(y|x); ``method`` one of ``attribution.METHODS`` (None: IG; occlusion on an int8 model)."""
        return attribution.explain(self, inputs, step, method, direct, batch_size)

    def sweep(self, inputs, batch_size: int = 64):
        """p(y|x,I) for every known step, in batched Step II passes; one input or a list."""
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        fields = [self.fields(x) for x in items]
        probs = sweep(self.model, fields, self.max_length, batch_size)
        first = reason(self.model, fields, None, self.max_length)
        out = [Sweep(f["text"], self.steps, self.labels, probs[i].tolist(), first["p_steps"][i].tolist()) for i, f in enumerate(fields)]
        return out[0] if single else out

    def counterfactuals(self, inputs, policy: str, steps=None, gold_steps=None, labels=None, constrained: bool = False,
                        seed: int = 0, batch_size: int = 64) -> list[counterfactual.CounterfactualRecord]:
        """Inject steps into every input under ``policy`` (see ``cott.counterfactual``) and read the answers.

        ``steps``: for ``fixed`` one step for all inputs, for ``given`` one step or a list of steps per input
        (labels or words, '|' between slots). ``gold_steps``/``labels``: the inputs' gold step and answer, if known.
        """
        if constrained and not self.step_answers:
            raise ValueError("this checkpoint records no step-answer table to constrain the answer with")
        items = list(inputs)
        fields = [self.fields(x) for x in items]
        if policy == "fixed":
            steps = [[steps]] * len(items)
        elif policy == "given":
            if steps is None or len(steps) != len(items):
                raise ValueError("the 'given' policy needs one step (or a list of steps) per input")
            steps = [s if isinstance(s, list) else [s] for s in steps]
        else:
            steps = None  # the other policies choose the steps themselves
        parsed = None if steps is None else [[self._step_words(s) for s in row] for row in steps]
        golds = None if gold_steps is None else [self._gold_step(s) for s in gold_steps]
        return counterfactual.run(
            self.model, fields, policy, steps=parsed, gold_steps=golds, gold_labels=labels,
            step_answers=self.step_answers, answer_mode=self.answer_mode,
            constrained=constrained, seed=seed, max_length=self.max_length, batch_size=batch_size,
            texts=[f["text"] for f in fields], scope_fit=self.config.out_of_scope,
        )

    def _gold_step(self, step) -> tuple[str, ...] | None:
        """A gold step's labels, the step written as labels or words; None stays None."""
        if step is None or step == "":
            return None
        return split(self.step_space.parse(step, free_text=False)[0])
