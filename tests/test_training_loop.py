"""The training loop's bookkeeping, read from one short in-process run's shard log and state: every example once an
epoch, a new order each epoch, validation and saves at the iterations the flags name, the warm-up schedule and the
learning rates of the two parameter groups; and the masked-LM warm-up's batches and loss."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import time
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
    return result, [json.loads(line) for line in shards.read_text().splitlines()] if shards.exists() else []


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _captured():
    """The messages of the train and cott loggers (INFO and up) and what went to stderr (the progress bars)."""
    handler, loggers = _Messages(), [logging.getLogger(name) for name in ("train", "cott")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            yield handler.lines, err
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


UNSEEN = {"text": "a shiny quartz", "step": "mineral", "label": "quartz"}  # in no training example


@pytest.fixture(scope="module")
def unseen_data(toy_data, tmp_path_factory):
    """The toy data with one example of an unseen label appended to val (24 + 1) and test (24 + 1)."""
    data = shutil.copytree(toy_data, tmp_path_factory.mktemp("unseen") / "data")
    for split in ("val", "test"):
        with open(data / f"{split}.jsonl", "a") as f:
            f.write(json.dumps(UNSEEN) + "\n")
    return data


@pytest.fixture(scope="module")
def run(tiny_bert, unseen_data, tmp_path_factory):
    """10 iterations, validated every 4, the state saved every 3, into a folder that does not exist yet (nor its
    parent), with the step-advice threshold above any accuracy (so the run gives its advice)."""
    out = tmp_path_factory.mktemp("loop") / "nested" / "run"
    with pytest.MonkeyPatch.context() as patch, _captured() as (lines, err):
        from train import advice

        patch.setattr(advice, "HARD_STEP", 1.01)
        start = time.perf_counter()
        result, log = _run(tiny_bert, unseen_data, out, "--eval-every", "4", "--save-every", "3")
        wall = time.perf_counter() - start
    return result, log, Namespace(out=out, lines=lines, bar=err.getvalue(), wall=wall)


def test_every_example_is_trained_once_an_epoch_in_a_new_order(run):
    _, log, _ = run
    trained = {r["iteration"]: r["examples"] for r in log if "examples" in r}
    assert sorted(trained) == list(range(TOTAL))
    assert [len(trained[i]) for i in range(TOTAL)] == [BATCH] * 4 + [96 - 4 * BATCH] + [BATCH] * 4 + [96 - 4 * BATCH]
    epochs = [[e for i in range(k * PER_EPOCH, (k + 1) * PER_EPOCH) for e in trained[i]] for k in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(96))
    assert epochs[0] != epochs[1]  # each epoch is shuffled anew


def test_validation_every_n_iterations_and_at_the_end_and_saves_as_asked(run):
    result, log, _ = run
    assert [h["iteration"] for h in result["history"]] == [4, 8, TOTAL]  # 10 is no multiple of 4: validated anyway
    assert result["iterations"] == TOTAL
    best = max(result["history"], key=lambda h: h["val"])
    assert result["best_iteration"] == min(h["iteration"] for h in result["history"] if h["val"] == best["val"])
    states = [r["iteration"] for r in log if r.get("saved") == "state"]
    assert states == [i for i in range(1, TOTAL + 1) if i % 3 == 0 or i % PER_EPOCH == 0]  # --save-every, epoch ends


def test_metrics_json_is_the_returned_result_with_device_seconds_and_advice(run):
    """metrics.json holds what the run returns; the device, the training seconds to a tenth and, the step being below
    the threshold, the advice, also logged; no test reading and no resumption without their flags."""
    result, _, seen = run
    assert (seen.out / "metrics.json").read_text(encoding="utf-8") == json.dumps(result, indent=2)
    assert result["device"] == "cpu"
    assert isinstance(result["train_seconds"], float) and 0 < result["train_seconds"] <= seen.wall
    assert result["train_seconds"] == round(result["train_seconds"], 1)
    val = json.loads((seen.out / "best" / "cott.json").read_text())["metrics"]["val"]
    assert result["advice"].startswith(f"the step was right for {val['step_accuracy']:.0%} of validation examples")
    assert result["advice"] in seen.lines
    assert "test" not in result and "resumed_at_iteration" not in result


def test_best_holds_the_selected_validation_and_what_the_run_read_from_its_data(run, unseen_data):
    """best/ is saved at each validation that beats every earlier one, with that validation's metrics (24 known
    examples, the label hierarchy's consistency, the top step only); the config keeps the training data's hierarchy
    and step-answer table; the last state holds the history."""
    from cott.counterfactual import step_answer_table
    from cott.data import load_jsonl
    from cott.evaluation import headline
    from cott.tasks import hierarchy

    result, log, seen = run
    history = [(h["iteration"], h["val"]) for h in result["history"]]
    improved = [i for k, (i, v) in enumerate(history) if all(v > w for _, w in history[:k])]
    assert [r["iteration"] for r in log if r.get("saved") == "best"] == improved
    assert {r["process"] for r in log} == {0}  # one process: every record is the main process's
    config = json.loads((seen.out / "best" / "cott.json").read_text())
    val = config["metrics"]["val"]
    assert headline(val, "classification") == result["best_val"] and val["examples"] == 24
    assert "inconsistency_rate" in val and "coverage_curve" not in val
    assert "step_sensitivity" not in val  # validation reads the top step only
    train = load_jsonl(unseen_data, "train")
    assert config["hierarchy"] == hierarchy(train)
    assert config["step_answers"] == step_answer_table(train, "classification")
    info = json.loads((seen.out / "state" / "state.json").read_text())["info"]
    assert info["iteration"] == TOTAL and info["history"] == result["history"]


def test_the_run_reports_its_data_its_validations_and_its_progress(run):
    result, _, seen = run
    assert "jsonl: 96 train / 24 val examples, 2 steps, 6 answers" in seen.lines
    assert any(line.startswith("pre-flight: task jsonl, method cott; examples: train 96") for line in seen.lines)
    assert "val: 1 of 25 examples have labels unseen in training and are skipped" in seen.lines
    best, said = (-1.0, 0), []
    for h in result["history"]:
        best = max(best, (h["val"], -h["iteration"]))
        said.append(f"iteration {h['iteration']}: val {h['val']:.4f} (best {best[0]:.4f} at iteration {-best[1]})")
    assert [line for line in seen.lines if line.startswith("iteration ")] == said
    # --mlm-warmup-steps 0: no warm-up; neither stopped nor resumed
    assert not [line for line in seen.lines if "MLM warm-up" in line or "stopping" in line or "resumed" in line]
    drawn = re.findall(r"train cott: [^\r\n]*", seen.bar)  # the bar, each time it is drawn
    assert f"| {TOTAL}/{TOTAL} " in drawn[-1]  # one step an iteration
    assert "evaluate: " in seen.bar  # the validations' own bar
    # after its counts, the bar shows each part of the last iteration's loss to 3 decimals
    assert re.search(r"L_y1=\d+\.\d{3}, L_I=\d+\.\d{3}, L_y2=\d+\.\d{3}, L_cc=\d+\.\d{3}\]", drawn[-1]), drawn[-1]


def test_group_by_length_puts_the_longest_prompt_first_and_sorts_each_batch(tiny_bert, toy_data, tmp_path, run):
    """With --group-by-length (transformers' grouping: here one mega-batch per batch) the epoch opens with the longest
    prompt and each batch runs longest first after its first example; without it, batches are not sorted."""
    from cott.batching import prompt_lengths

    model, train = toy_model(tiny_bert, toy_data)
    lengths = prompt_lengths(model, train, 48)

    def batches(log):
        trained = {r["iteration"]: r["examples"] for r in log if "examples" in r}
        return [[lengths[e] for e in trained[i]] for i in sorted(trained)]

    def ordered(batch):
        return batch[1:] == sorted(batch[1:], reverse=True)

    _, log = _run(tiny_bert, toy_data, tmp_path / "grouped", "--group-by-length", "--epochs", "1")
    grouped = batches(log)
    assert len(grouped) == PER_EPOCH and grouped[0][0] == max(lengths) and all(ordered(b) for b in grouped)
    assert not all(ordered(b) for b in batches(run[1]))


def test_resuming_a_finished_run_only_reads_the_test_split_and_a_run_without_resume_starts_afresh(
        run, tiny_bert, unseen_data, tmp_path):
    """--resume of a run that is done trains nothing, keeps its history and reads the test split (unseen labels left
    out and counted) into the result, best/ and its metrics_test.json; without --resume the same folder trains anew,
    and a stopped run reads no test split even with --eval-test."""
    result, _, seen = run
    out = shutil.copytree(seen.out, tmp_path / "again")
    state = out / "state" / "state.json"
    meta = json.loads(state.read_text())
    meta["info"]["run"]["output_dir"] = str(out)  # the copy's own folder
    state.write_text(json.dumps(meta))
    flags = ("--eval-every", "4", "--save-every", "3", "--eval-test")
    with _captured() as (lines, err):
        again, log = _run(tiny_bert, unseen_data, out, *flags, "--resume")
    assert again["resumed_at_iteration"] == again["iterations"] == TOTAL and again["history"] == result["history"]
    assert log == []  # no iteration left, nothing saved
    assert f"resumed from {out / 'state'} at iteration {TOTAL}" in lines
    assert f"train cott: 100%" in err.getvalue() and f"| 0/{TOTAL} " not in err.getvalue()  # the bar starts full
    test = again["test"]
    assert test["examples"] == 24 and test["dropped"] == 1
    assert "test: 1 of 25 examples have labels unseen in training and are skipped" in lines
    assert any(line.startswith("test:\n24 examples") and "(1 left out" in line for line in lines)
    assert "following_rate" in test and "inconsistency_rate" in test  # the checkpoint's step answers and hierarchy
    assert (out / "best" / "metrics_test.json").read_text() == json.dumps(test, indent=2)
    tested = json.loads((out / "best" / "cott.json").read_text())["metrics"]["test"]
    assert tested == {k: v for k, v in test.items() if k != "coverage_curve"}
    assert (out / "metrics.json").read_text() == json.dumps(again, indent=2)

    with _captured() as (lines, _):
        fresh, _ = _run(tiny_bert, unseen_data, out, *flags, "--stop-after-iterations", "1")
    assert fresh["iterations"] == 1 and fresh["history"] == [] and "resumed_at_iteration" not in fresh
    assert "test" not in fresh  # stopped: continue with --resume, the test comes at the end
    assert "stopping after 1 iterations as asked; continue with --resume" in lines
    assert json.loads(state.read_text())["info"]["iteration"] == 1


def test_the_run_hands_its_flags_to_the_validation_sample_the_warmup_and_the_frozen_embeddings(
        tiny_bert, toy_data, tmp_path, monkeypatch):
    """--max-eval-examples validates on the sample of --seed; the MLM warm-up runs --mlm-warmup-steps iterations of
    --batch-size training texts at --head-lr, cut at --max-length, seeded; --freeze-embeddings leaves the word
    embeddings out of what trains (and of the state); best/ is saved as --save-weights and --save-dtype say."""
    import train.loop
    from cott.data import load_jsonl, sample
    from safetensors.torch import load_file

    validated, warmups = [], []
    evaluate, mlm_warmup = train.loop.evaluate, train.loop.mlm_warmup
    monkeypatch.setattr(train.loop, "evaluate", lambda model, examples, *args, **kwargs: validated.append(
        [e.fields["text"] for e in examples]) or evaluate(model, examples, *args, **kwargs))
    monkeypatch.setattr(train.loop, "mlm_warmup", lambda model, texts, *args, **kwargs: warmups.append(
        (list(texts), args, kwargs)) or mlm_warmup(model, texts, *args, **kwargs))
    out = tmp_path / "run"
    with _captured() as (lines, _):
        _run(tiny_bert, toy_data, out, "--mlm-warmup-steps", "2", "--seed", "1", "--max-eval-examples", "10",
             "--freeze-embeddings", "--stop-after-iterations", "1", "--eval-every", "1", "--save-weights", "delta",
             "--save-dtype", "float16")
    (texts, args, kwargs), = warmups
    assert texts == [e.fields["text"] for e in load_jsonl(toy_data, "train")]
    assert args == (2, BATCH, 1e-3, 48, 1) and kwargs == {"progress": True}
    assert any(line.startswith("MLM warm-up: loss") and line.endswith("over 2 iterations") for line in lines)
    assert validated == [[e.fields["text"] for e in sample(load_jsonl(toy_data, "val"), 10, 1)]]
    assert json.loads((out / "best" / "cott.json").read_text())["metrics"]["val"]["examples"] == 10
    trained = load_file(out / "state" / "model.safetensors")
    assert not [k for k in trained if "word_embeddings" in k] and [k for k in trained if "encoder.layer" in k]
    saved = load_file(out / "best" / "delta.safetensors")  # best/ as --save-weights and --save-dtype ask
    assert saved and {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float16}


def test_lora_adapters_and_the_accelerator_get_the_run_s_settings(tiny_bert, toy_data, tmp_path, monkeypatch):
    """--lora-r r: adapters of rank r, alpha 2r, on the attention's query and value, trained with the fresh MLM head
    (and nothing else of the backbone); the accelerator trains on the CPU as --cpu asks, at --mixed-precision, splits
    each iteration's batch between processes and lets DDP find the parameters a loss leaves out."""
    import peft
    import train.loop
    from safetensors.torch import load_file

    configs, accelerators = [], []
    get_peft_model, accelerator = peft.get_peft_model, train.loop.Accelerator
    monkeypatch.setattr(peft, "get_peft_model", lambda model, config: configs.append(config) or get_peft_model(model, config))
    monkeypatch.setattr(train.loop, "Accelerator", lambda **kwargs: accelerators.append(kwargs) or accelerator(**kwargs))
    _run(tiny_bert, toy_data, tmp_path / "lora", "--lora-r", "2", "--stop-after-iterations", "1", "--cpu")
    (config,) = configs
    assert (config.r, config.lora_alpha, set(config.target_modules)) == (2, 4, {"query", "value"})
    trained = load_file(tmp_path / "lora" / "state" / "model.safetensors")
    assert {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in trained if ".lora_" in k} == {"query", "value"}
    assert [k for k in trained if "predictions.transform" in k]  # the fresh MLM head trains with the adapters
    assert not [k for k in trained if "encoder.layer" in k and ".lora_" not in k]
    (kwargs,) = accelerators
    assert kwargs["cpu"] is True and kwargs["mixed_precision"] == "no"
    assert kwargs["dataloader_config"].split_batches is True
    assert [h.find_unused_parameters for h in kwargs["kwargs_handlers"]] == [True]


def test_the_step_following_weight_rises_over_the_run_s_iterations(tiny_bert, toy_data, tmp_path, monkeypatch):
    """--step-following 0.5 reached over half of the 10 iterations: 0, 0.1, 0.2 at the first three, each batch with
    the training data's step-answer table."""
    import train.loop

    seen, cott_loss = [], train.loop.cott_loss
    monkeypatch.setattr(train.loop, "cott_loss", lambda model, batch, cfg: seen.append(
        (cfg.following_weight, "counterfactual_allowed" in batch)) or cott_loss(model, batch, cfg))
    _run(tiny_bert, toy_data, tmp_path / "follow", "--step-following", "0.5", "--step-following-warmup", "0.5",
         "--stop-after-iterations", "3")
    assert seen == [(0.0, True), (pytest.approx(0.1), True), (pytest.approx(0.2), True)]


def test_the_loss_and_the_batcher_follow_the_objective_flags(tiny_bert, toy_data):
    from train.cli import parser
    from train.loop import objective

    model, _ = toy_model(tiny_bert, toy_data)
    base = ["--task", "jsonl", "--data", "x"]
    args = parser().parse_args(base + ["--step-loss-weight", "0.3", "--lambda-cc", "0.7", "--tau", "0.2",
                                       "--in-batch-negatives"])
    cfg, batcher = objective(model, args, 40)
    assert (cfg.step_weight, cfg.step2, cfg.contrastive_weight, cfg.tau, cfg.in_batch_negatives) == (0.3, True, 0.7, 0.2, True)
    assert batcher.max_length == 40 and batcher.step2 and batcher.counterfactual
    cfg, batcher = objective(model, parser().parse_args(base + ["--no-contrastive"]), 48)
    assert cfg.contrastive_weight == 0.0 and not cfg.in_batch_negatives and not batcher.counterfactual
    cfg, batcher = objective(model, parser().parse_args(base + ["--step1-only"]), 48)
    assert not cfg.step2 and not batcher.step2 and not batcher.counterfactual


def test_the_backbone_trains_at_lr_and_every_other_trained_parameter_at_head_lr(tiny_bert, toy_data):
    """The masked LM outside its head at --lr; its head, the projection and the soft labels at --head-lr; frozen
    parameters in neither group."""
    from train.loop import parameter_groups

    model, _ = toy_model(tiny_bert, toy_data)
    frozen = model.mlm.get_input_embeddings().weight.requires_grad_(False)
    groups = parameter_groups(model, Namespace(lr=1e-5, head_lr=1e-3))
    assert [g["lr"] for g in groups] == [1e-5, 1e-3]
    head = {id(p) for p in model.head_parameters()}
    backbone = {id(p) for p in model.masked_lm().parameters() if p.requires_grad and id(p) not in head}
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == backbone and head <= ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {id(p) for p in model.parameters() if p.requires_grad} and id(frozen) not in ids[1]
    assert len(ids[1]) > len(head)  # the parameters outside the masked LM (projection, soft labels) too


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


def test_mlm_warmup_logs_its_first_and_last_loss_and_shows_its_bar_as_asked(tiny_bert, toy_data, caplog, capsys):
    from train.warmup import mlm_warmup

    model, examples = toy_model(tiny_bert, toy_data)
    texts = [e.fields["text"] for e in examples]
    with caplog.at_level(logging.INFO, logger="train.warmup"):
        losses = mlm_warmup(model, texts, 3, batch_size=8, lr=1e-2, progress=False)
        assert "MLM warm-up" not in capsys.readouterr().err
        assert mlm_warmup(model, texts, 0, progress=True) == []
    assert "MLM warm-up: 0it" in capsys.readouterr().err
    assert [r.getMessage() for r in caplog.records if r.name == "train.warmup"] == [
        f"MLM warm-up: loss {losses[0]:.3f} -> {losses[-1]:.3f} over 3 iterations",
        "MLM warm-up: loss 0.000 -> 0.000 over 0 iterations"]  # no iteration: no loss to show


@pytest.mark.parametrize("lr", [0.0, 1e-2])
def test_mlm_warmup_moves_the_head_at_the_rate_it_is_given(tiny_bert, toy_data, lr):
    """The warm-up's AdamW steps at ``lr`` (the run's --head-lr): at 0 the head stays exactly as it was."""
    from train.warmup import mlm_warmup

    model, examples = toy_model(tiny_bert, toy_data)
    before = [p.detach().clone() for p in model.head_parameters()]
    mlm_warmup(model, [e.fields["text"] for e in examples], 2, batch_size=8, lr=lr, progress=False)
    moved = [not torch.equal(b, p) for b, p in zip(before, model.head_parameters())]
    assert any(moved) == (lr > 0)


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
