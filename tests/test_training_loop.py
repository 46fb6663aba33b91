"""The training loop's bookkeeping, read from one short in-process run's shard log and state: every example once an
epoch, a new order each epoch, validation and saves at the iterations the flags name, the warm-up schedule and the
learning rates of the two parameter groups; and the masked-LM warm-up's batches and loss."""
from __future__ import annotations

import json
import os
from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F

from helpers import toy_examples, toy_model, train_args
from train.cli import main as train_main

# 96 toy training examples in batches of 20: 5 iterations an epoch (the last one of 16), 10 in 2 epochs.
BATCH, PER_EPOCH, TOTAL = 20, 5, 10


def _run(backbone, data, out, *extra) -> tuple[dict, list[dict]]:
    shards = out.parent / f"{out.name}.shards.jsonl"
    os.environ["COTT_LOG_SHARDS"] = str(shards)
    try:
        result = train_main(train_args(backbone, data, out, "--mlm-warmup-steps", "0", "--batch-size", str(BATCH),
                                       *extra))
    finally:
        del os.environ["COTT_LOG_SHARDS"]
    return result, [json.loads(line) for line in shards.read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tiny_bert, toy_data, tmp_path_factory):
    return _run(tiny_bert, toy_data, tmp_path_factory.mktemp("loop") / "run", "--eval-every", "4", "--save-every", "3")


def test_every_example_is_trained_once_an_epoch_in_a_new_order(run):
    _, log = run
    trained = {r["iteration"]: r["examples"] for r in log if "examples" in r}
    assert sorted(trained) == list(range(TOTAL))
    assert [len(trained[i]) for i in range(TOTAL)] == [BATCH] * 4 + [96 - 4 * BATCH] + [BATCH] * 4 + [96 - 4 * BATCH]
    epochs = [[e for i in range(k * PER_EPOCH, (k + 1) * PER_EPOCH) for e in trained[i]] for k in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(96))
    assert epochs[0] != epochs[1]  # each epoch is shuffled anew


def test_validation_every_n_iterations_and_at_the_end_and_saves_as_asked(run):
    result, log = run
    assert [h["iteration"] for h in result["history"]] == [4, 8, TOTAL]  # 10 is no multiple of 4: validated anyway
    assert result["iterations"] == TOTAL
    best = max(result["history"], key=lambda h: h["val"])
    assert result["best_iteration"] == min(h["iteration"] for h in result["history"] if h["val"] == best["val"])
    states = [r["iteration"] for r in log if r.get("saved") == "state"]
    assert states == [i for i in range(1, TOTAL + 1) if i % 3 == 0 or i % PER_EPOCH == 0]  # --save-every, epoch ends


def test_the_learning_rates_rise_over_the_warmup_share_for_both_groups(tiny_bert, toy_data, tmp_path):
    """After 2 of 10 iterations with --warmup-ratio 0.5 (5 warm-up iterations), each group is at 2/5 of its own rate:
    the backbone of --lr, the heads of --head-lr."""
    _run(tiny_bert, toy_data, tmp_path / "warm", "--stop-after-iterations", "2", "--warmup-ratio", "0.5",
         "--lr", "1e-3", "--head-lr", "3e-2")
    groups = json.loads((tmp_path / "warm" / "state" / "state.json").read_text())["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 * 2 / 5, 3e-2 * 2 / 5])


def test_a_tied_validation_score_keeps_the_earlier_best():
    from train.state import Progress

    progress = Progress()
    for iteration, score in ((4, 0.5), (8, 0.5), (10, 0.4)):
        progress.iteration = iteration
        progress.record(score)
    assert (progress.best, progress.best_iteration) == (0.5, 4)


@pytest.mark.parametrize("iteration, want", [(0, 0.0), (5, 0.125), (10, 0.25), (20, 0.5), (40, 0.5)])
def test_the_step_following_weight_ramps_up_over_its_share(iteration, want):
    from train.loop import following_weight

    args = Namespace(step_following=0.5, step_following_warmup=0.5)
    assert following_weight(args, iteration, total=40) == pytest.approx(want)  # 0.5 reached over 20 of 40 iterations
    assert following_weight(Namespace(step_following=0.5, step_following_warmup=0.0), iteration, 40) == 0.5


class _Recording:
    """The tokenizer, recording each batch it returns."""

    def __init__(self, tokenizer):
        self._tok, self.batches = tokenizer, []

    def __call__(self, *args, **kwargs):
        batch = self._tok(*args, **kwargs)
        self.batches.append({k: v.clone() for k, v in batch.items()})
        return batch

    def __getattr__(self, name):
        return getattr(self._tok, name)


def test_mlm_warmup_masks_15_percent_of_the_words_and_scores_them_with_the_mlm_head(lively_bert, toy_data):
    """Each batch (cut at max_length) masks about 15% of its real tokens, never [CLS], [SEP] or padding; the loss is
    the masked LM's own cross-entropy at the masked places; no gradient is left behind on any parameter."""
    from train.warmup import mlm_warmup

    model, examples = toy_model(lively_bert, toy_data)
    bias = torch.randn(model.mlm.get_output_embeddings().bias.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # a trained MLM head's bias is not zero: the loss must include it
        model.mlm.get_output_embeddings().bias.copy_(bias)
    recording, seen = _Recording(model.tokenizer), []
    model.tokenizer = recording
    encode = model.encode
    model.encode = lambda ids, mask: seen.append(ids.clone()) or encode(ids, mask)
    texts = [e.fields["text"] + " and the big red house near the house" * (i % 3) for i, e in enumerate(examples)]

    model.eval()  # no dropout: the reference and the warm-up see one network
    model.mlm.train = lambda mode=True: model.mlm  # noqa: E731  (mlm_warmup calls mlm.train())
    losses = mlm_warmup(model, texts, 12, batch_size=16, lr=1e-2, max_length=12, seed=3, progress=False)
    del model.encode, model.mlm.train
    model.tokenizer = recording._tok
    assert len(losses) == len(seen) == len(recording.batches) == 12
    special = torch.tensor(sorted(set(model.tokenizer.all_special_ids) - {model.tokenizer.mask_token_id}))
    masked = real = 0
    for batch, inputs in zip(recording.batches, seen):
        ids, att = batch["input_ids"], batch["attention_mask"].bool()
        assert ids.shape[1] <= 12
        chosen = inputs != ids
        assert (inputs[chosen] == model.tokenizer.mask_token_id).all()
        assert not (chosen & (~att | torch.isin(ids, special))).any()  # never a special token or padding
        masked += int(chosen.sum())
        real += int((att & ~torch.isin(ids, special)).sum())
    assert 0.10 < masked / real < 0.20
    first = recording.batches[0]["input_ids"]
    chosen = seen[0] != first
    fresh, _ = toy_model(lively_bert, toy_data)  # the head has moved since: the same model, untouched
    with torch.no_grad():
        fresh.mlm.get_output_embeddings().bias.copy_(bias)
    fresh.eval()
    with torch.no_grad():
        logits = fresh.mlm(input_ids=seen[0], attention_mask=recording.batches[0]["attention_mask"]).logits
    assert losses[0] == pytest.approx(F.cross_entropy(logits[chosen], first[chosen]).item(), rel=1e-4)
    # nothing left for the first training iteration to add to its own gradient (the tied word embeddings included)
    assert [n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()] == []


def test_the_test_sample_is_the_same_whatever_the_training_seed(tiny_bert, toy_data, tmp_path, monkeypatch):
    """--max-test-examples reads one seeded sample of the test split: every run of every seed meets the same examples."""
    import train.loop

    tested, evaluate = [], train.loop.evaluate
    monkeypatch.setattr(train.loop, "evaluate", lambda model, examples, *args, **kwargs: tested.append(
        [e.fields["text"] for e in examples]) or evaluate(model, examples, *args, **kwargs))
    for seed in ("0", "1"):
        _run(tiny_bert, toy_data, tmp_path / seed, "--epochs", "1", "--seed", seed, "--eval-test", "--max-test-examples", "7")
    test_texts = [e["text"] for e in toy_examples(24, 2)]  # write_toy_data's test split
    first, second = tested[1], tested[3]  # each run: validation, then the test
    assert first == second and len(first) == 7 and all(t in test_texts for t in first)
