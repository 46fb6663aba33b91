"""The CoTT model: a masked LM read at the [A] and [C] masks through verbalizers, plus a projection head."""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .template import Encoding, Template
from .verbalizer import Verbalizer


def _mlm_head_transform(mlm):
    """The MLM head up to (not including) the vocabulary projection, for the supported architectures."""
    if hasattr(mlm, "cls") and hasattr(mlm.cls, "predictions"):  # BERT, MiniLM
        return mlm.cls.predictions.transform
    if hasattr(mlm, "lm_head") and hasattr(mlm.lm_head, "dense"):  # RoBERTa, XLM-R
        head = mlm.lm_head
        return lambda h: head.layer_norm(F.gelu(head.dense(h)))
    if hasattr(mlm, "vocab_transform"):  # DistilBERT
        return lambda h: mlm.vocab_layer_norm(mlm.activation(mlm.vocab_transform(h)))
    raise NotImplementedError(f"CoTT does not know the MLM head layout of {type(mlm).__name__}")


class SoftLabels(nn.Module):
    """Trainable label vectors and biases added to a verbalizer's label-word scores (a soft verbalizer).

    Zero at the start, so a model begins exactly at its label words; training moves each label away from
    the mean of its words' (possibly frozen) embeddings, as a [CLS] classifier's free rows would.
    """

    def __init__(self, labels: int, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(labels, hidden))
        self.bias = nn.Parameter(torch.zeros(labels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.T.to(z.dtype) + self.bias.to(z.dtype)


class CoTTModel(nn.Module):
    """A masked LM that writes a step at ``[C]`` (Step I) and answers at ``[A]`` (Steps I and II).

    With ``answer_head="linear"`` and a template without ``[A]`` it is the fine-tuning baseline; with a
    template without ``[C]`` it is single-step prompt tuning. With ``soft_verbalizer`` each verbalizer's
    label scores gain trainable label vectors (``SoftLabels``); the words still fill the [C] slots.
    """

    def __init__(
        self,
        mlm,
        tokenizer,
        template: Template,
        answer: Verbalizer,
        step: Verbalizer | None = None,
        answer_head: str = "verbalizer",
        proj_dim: int = 128,
        soft_verbalizer: bool = False,
    ):
        super().__init__()
        if template.num_step_slots and step is None:
            raise ValueError("a template with [C] slots needs a step verbalizer")
        if answer_head not in ("verbalizer", "linear"):
            raise ValueError(f"answer_head must be 'verbalizer' or 'linear', not {answer_head!r}")
        self.mlm = mlm
        self.tokenizer = tokenizer
        self.template = template
        self.answer = answer.bind(tokenizer) if answer_head == "verbalizer" else answer
        self.step = step.bind(tokenizer) if step is not None else None
        self.answer_head = answer_head
        hidden = mlm.config.hidden_size
        self.projection = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, proj_dim))
        self.classifier = nn.Linear(hidden, len(answer)) if answer_head == "linear" else None
        self.dropout = nn.Dropout(mlm.config.hidden_dropout_prob) if answer_head == "linear" else None
        self._transform = _mlm_head_transform(mlm)
        soft = soft_verbalizer and answer_head == "verbalizer"
        self.answer_soft = SoftLabels(len(answer), hidden) if soft else None
        self.step_soft = SoftLabels(len(step), hidden) if soft_verbalizer and step is not None else None
        self.step_temperature = 1.0  # inference only: training reads the step logits themselves
        if answer_head == "verbalizer":
            self.register_buffer("answer_tokens", self.answer.token_ids, persistent=False)
            self.register_buffer("answer_weights", self.answer.weights, persistent=False)
        if self.step is not None:
            self.register_buffer("step_tokens", self.step.token_ids, persistent=False)
            self.register_buffer("step_weights", self.step.weights, persistent=False)

    # ---- structure -------------------------------------------------------------------------
    @property
    def num_step_slots(self) -> int:
        return self.template.num_step_slots

    def known_steps(self) -> list[tuple[str, ...]]:
        """Every step as a tuple of labels, one per [C] slot, in the order of ``step_distribution``."""
        if self.step is None:
            return []
        return list(itertools.product(self.step.labels, repeat=self.num_step_slots))

    def step_phrase(self, step: Sequence[str]) -> list[str]:
        return [self.step.phrase(s) for s in step]

    # ---- forward pieces --------------------------------------------------------------------
    def masked_lm(self):
        """The Hugging Face masked LM itself, also when wrapped by peft for LoRA."""
        return self.mlm.get_base_model() if hasattr(self.mlm, "get_base_model") else self.mlm

    def head_parameters(self) -> list[nn.Parameter]:
        """The MLM head's own parameters (transform, decoder bias), without the decoder tied to the embeddings."""
        tied = self.masked_lm().get_input_embeddings().weight
        return [p for n, p in self.masked_lm().named_parameters()
                if n.startswith(("cls.", "lm_head.", "vocab_")) and p is not tied]

    def encode(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor,
               inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states of the token ids, or of their word embeddings ``inputs_embeds`` (for attributions)."""
        body = self.masked_lm().base_model  # the encoder without the MLM head: hidden states only
        if inputs_embeds is not None:
            return body(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
        return body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @property
    def soft_verbalizer(self) -> bool:
        return self.answer_soft is not None or self.step_soft is not None

    def _label_logits(self, h: torch.Tensor, tokens: torch.Tensor, weights: torch.Tensor,
                      soft: SoftLabels | None) -> torch.Tensor:
        # Only the label words' rows of the decoder: never the full vocabulary.
        decoder = self.mlm.get_output_embeddings()
        z = self._transform(h)
        token_logits = z @ decoder.weight[tokens].T
        if decoder.bias is not None:
            token_logits = token_logits + decoder.bias[tokens]
        logits = token_logits @ weights.T.to(token_logits.dtype)
        return logits if soft is None else logits + soft(z)

    def answer_logits(self, h_answer: torch.Tensor) -> torch.Tensor:
        if self.classifier is not None:
            return self.classifier(self.dropout(h_answer))
        return self._label_logits(h_answer, self.answer_tokens, self.answer_weights, self.answer_soft)

    def step_logits(self, h_steps: torch.Tensor) -> torch.Tensor:
        """(N, slots, H) hidden states at the [C] masks -> (N, slots, step labels)."""
        return self._label_logits(h_steps, self.step_tokens, self.step_weights, self.step_soft)

    def forward(self, input_ids, attention_mask, answer_pos, step_pos=None, project: bool = False, inputs_embeds=None):
        """Answer logits, [A] hidden states, their projection g(h) if ``project``, and step logits at [C] masks."""
        hidden = self.encode(input_ids, attention_mask, inputs_embeds)
        rows = torch.arange(hidden.size(0), device=hidden.device)
        h_answer = hidden[rows, answer_pos]
        out = {"answer_logits": self.answer_logits(h_answer), "answer_hidden": h_answer}
        if project:
            out["answer_projection"] = self.projection(h_answer)
        if step_pos is not None and step_pos.numel() and self.step is not None:
            has_step = step_pos[:, 0] >= 0
            idx = has_step.nonzero(as_tuple=True)[0]
            h_steps = hidden[idx[:, None], step_pos[idx]]
            out["step_logits"] = self.step_logits(h_steps)
            out["step_rows"] = idx
        return out

    def step_distribution(self, step_logits: torch.Tensor) -> torch.Tensor:
        """(N, slots, K) logits -> (N, K**slots) joint p(I|x): the product of the per-slot distributions.

        The logits are divided by ``step_temperature`` (1 unless a checkpoint was calibrated, see
        ``experiments.calibration``); that is the joint raised to 1/T and renormalised, with the same argmax.
        """
        logp = (step_logits / self.step_temperature).log_softmax(-1)
        joint = logp[:, 0]
        for s in range(1, logp.size(1)):
            joint = (joint[:, :, None] + logp[:, s][:, None, :]).flatten(1)
        return joint.exp()

    # ---- batching ------------------------------------------------------------------------
    def collate(self, encodings: Sequence[Encoding]) -> dict[str, torch.Tensor]:
        """Pad encodings into one batch of tensors on the model's device."""
        device = next(self.parameters()).device
        width = max(len(e.input_ids) for e in encodings)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(encodings), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        slots = max(1, self.num_step_slots)
        step_pos = torch.full((len(encodings), slots), -1, dtype=torch.long)
        for i, e in enumerate(encodings):
            ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
            mask[i, : len(e.input_ids)] = 1
            if e.step_pos:
                step_pos[i] = torch.tensor(e.step_pos)
        answer_pos = torch.tensor([e.answer_pos for e in encodings], dtype=torch.long)
        batch = {"input_ids": ids, "attention_mask": mask, "answer_pos": answer_pos, "step_pos": step_pos}
        return {k: v.to(device) for k, v in batch.items()}
