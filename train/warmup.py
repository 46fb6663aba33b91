"""Masked-LM warm-up of a fresh MLM head on the training texts, before task training."""
from __future__ import annotations

import logging
import random

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def mlm_warmup(model, texts: list[str], steps: int, batch_size: int = 32, lr: float = 1e-4, max_length: int = 64,
               seed: int = 0, mask_prob: float = 0.15, progress: bool = True) -> list[float]:
    """Train the MLM head (the encoder stays as it is) to fill 15% masked tokens for ``steps`` optimizer
    iterations (``--mlm-warmup-steps``); returns the losses.

    The decoder rows are only scored at masked positions, never at every position.
    """
    mlm, tok = model.mlm, model.tokenizer
    opt = torch.optim.AdamW(model.head_parameters(), lr=lr)
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    device = next(mlm.parameters()).device
    special = set(tok.all_special_ids)
    losses = []
    mlm.train()
    for _ in tqdm(range(steps), desc="MLM warm-up", disable=not progress):
        batch = tok([rng.choice(texts) for _ in range(batch_size)], truncation=True, max_length=max_length,
                    padding=True, return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        can = mask.bool() & ~torch.isin(ids, torch.tensor(sorted(special)))
        chosen = can & (torch.rand(ids.shape, generator=gen) < mask_prob)
        if not chosen.any():
            continue
        labels = ids[chosen]
        inputs = ids.clone()
        inputs[chosen] = tok.mask_token_id
        with torch.no_grad():  # only the head learns here
            hidden = model.encode(inputs.to(device), mask.to(device))[chosen.to(device)]
        decoder = mlm.get_output_embeddings()
        # The decoder's weight is the (tied) word embeddings, which this optimizer does not train: detached, so no
        # gradient builds up on them to be added to the first training iteration's
        logits = model._transform(hidden) @ decoder.weight.detach().T
        if decoder.bias is not None:
            logits = logits + decoder.bias
        loss = F.cross_entropy(logits, labels.to(device))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    logger.info("MLM warm-up: loss %.3f -> %.3f over %d iterations", losses[0] if losses else 0, losses[-1] if losses else 0, steps)
    return losses
