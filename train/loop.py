"""The training run: a plain loop under accelerate, validation-only model selection, resumable state.

``run`` reads top to bottom: data, model, optimizer and schedule, the loop over optimizer iterations, validation
and saving, and the test reading of the selected checkpoint.

Data parallel (``accelerate launch --multi_gpu --num_processes N -m train ...``; on CPUs with train's ``--cpu``): each iteration's batch of ``--batch-size``
examples (the seeded order of ``batch_indices``) comes from a ``DataLoader`` that ``accelerator.prepare`` splits
(``split_batches``): each process trains its own contiguous share of batch_size / N examples, and the gradients
DDP averages are those of the whole batch. Validation, checkpoints, the state and the test run on the main process.
Without ``accelerate launch`` (one process) the run is the one it always was.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from functools import partial
from typing import Iterator

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from cott.batching import TrainingBatcher, prompt_lengths
from cott.counterfactual import step_answer_table
from cott.checkpoint import CONFIG, load_checkpoint, read_config, save_checkpoint, training_meta, update_config
from cott.data import DataError, sample
from cott.examples import TextsOf
from cott.evaluation import evaluate, headline, known_examples, recorded, summary
from cott.losses import LossConfig, cott_loss
from cott.model import CoTTModel
from cott.tasks import HIERARCHY, get_task, hierarchy, label_sets, loader_of

from .advice import step_advice
from .build import answer_mode, build_model, model_from_checkpoint
from . import preflight
from .preflight import resolve_max_length
from .parallel import (ExampleIndices, IterationBatches, check_processes, log_shards, own_share,
                       whole_batch_parts)
from .state import STATE_JSON, Progress, load_state, run_settings, save_state, state_folder
from .warmup import mlm_warmup

logger = logging.getLogger(__name__)


def run(args) -> dict:
    """Train one model as ``args`` (``train.cli.settings``) says; returns the final metrics, also written to
    OUTPUT/metrics.json."""
    # split_batches: a loader's batch is the whole iteration's, and each process gets its share of it. Several
    # methods and ablations leave parameters out of the loss (finetune the MLM head, no contrastive loss the
    # projection): DDP is told to look for them
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu,
                              dataloader_config=DataLoaderConfiguration(split_batches=True),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    main_process, processes = accelerator.is_main_process, accelerator.num_processes
    check_processes(args, processes)
    if not main_process:  # one log of the run: the main process's
        logging.getLogger("train").setLevel(logging.WARNING)
    torch.manual_seed(args.seed)

    # Data
    task = get_task(args.task)
    load = loader_of(task, args.columns)
    train = sample(load(args.data, "train"), args.max_train_examples, args.seed)  # Examples: rows read from disk
    steps, answers = label_sets(train)

    # Model, and the pre-flight report (alone with --check)
    model, parent = prepare_model(task, steps, answers, args)
    own_lengths = preflight.prompt_lengths(model, train)  # counted once: for auto and for the report
    max_length = resolve_max_length(args.max_length, model, train, own_lengths)
    loaded_val = load(args.data, "val")
    if main_process:
        splits = {"train": train, "val": loaded_val} | _optional_split(load, args.data, "test")
        rep = preflight.report(task, args.method, model, splits, max_length, args.max_length, own_lengths)
        if args.check:
            loss_cfg, batcher = objective(model, args, max_length, step_answer_table(train, task.kind) if steps else None)
            seconds = preflight.epoch_seconds(model.to(accelerator.device), batcher, loss_cfg, train, args.batch_size)
            print(preflight.render(rep, seconds))
            return {"check": rep, "epoch_seconds": round(seconds, 3)}
        logger.info("%s", preflight.render(rep))
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir, best_dir = state_folder(out_dir), out_dir / "best"
    val = sample(known_examples(model, loaded_val, "val"), args.max_eval_examples, args.seed)
    logger.info("%s: %d train / %d val examples, %d steps, %d answers", task.name, len(train), len(val), len(steps),
                len(answers))
    model.to(accelerator.device)
    resuming = args.resume and (state_dir / STATE_JSON).exists()  # train.cli.settings checked it is resumable
    if args.mlm_warmup_steps and args.method != "finetune" and not resuming:  # a resumed state holds the warmed head
        mlm_warmup(model, TextsOf(train), args.mlm_warmup_steps, args.batch_size, args.head_lr,
                   max_length, args.seed, progress=main_process)
    meta = training_meta(task, args.method, answer_mode(args), args.model, max_length, vars(args),
                         hierarchy(train) if task.kind == HIERARCHY else None,
                         (args.init_from, parent) if parent is not None else None,
                         step_answer_table(train, task.kind) if steps else None)

    # Optimizer and schedule
    per_epoch = math.ceil(len(train) / args.batch_size)
    total = per_epoch * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, args), weight_decay=args.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    loss_cfg, batcher = objective(core, args, max_length, meta.get("step_answers"))
    progress = Progress()
    if resuming:
        progress = load_state(state_dir, core, optimizer, scheduler)
        logger.info("resumed from %s at iteration %d", state_dir, progress.iteration)
    resumed_at = progress.iteration

    # The loop: the iterations from where the state stands (a resumed run meets an uninterrupted one's batches, each
    # process its share of them)
    lengths = prompt_lengths(core, train, max_length) if args.group_by_length else None
    order = partial(batch_indices, len(train), per_epoch, total, resumed_at, lengths, args)
    sampler = IterationBatches(order, total - resumed_at, args.batch_size, processes)
    loader = accelerator.prepare(DataLoader(ExampleIndices(len(train)), batch_sampler=sampler, collate_fn=list))
    eval_every = args.eval_every or per_epoch
    bar = tqdm(total=total, initial=progress.iteration, desc=f"train {args.method}", disable=not main_process)
    start = time.perf_counter()
    model.train()
    stopped = False
    for whole, places in zip(order(), loader):
        mine, before, weight = own_share(whole, places, processes, accelerator.process_index)
        log_shards({"process": accelerator.process_index, "iteration": progress.iteration,
                    "examples": mine if weight else []})
        # Randomness keyed by (seed, iteration), so a resumed run repeats an uninterrupted one exactly; the
        # counterfactual draws of a share are the whole batch's (``before``), whatever the number of processes.
        torch.manual_seed(args.seed * 1_000_003 + progress.iteration)
        batch = batcher([train[i] for i in mine], random.Random(args.seed * 1_000_003 + progress.iteration),
                        before=[train[i] for i in before])
        loss_cfg.following_weight = following_weight(args, progress.iteration, total)
        with accelerator.autocast():
            loss, parts = cott_loss(model, batch, loss_cfg)
        if weight != 1.0:  # a share of a short batch: DDP's mean over processes is then the whole batch's mean
            loss = loss * weight
        if processes > 1:
            parts = whole_batch_parts(accelerator, parts, len(mine) if weight else 0, len(whole))
        accelerator.backward(loss)
        if args.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        progress.iteration += 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})

        # Validation and saving, on the main process; the others wait for its score
        if progress.iteration % eval_every == 0 or progress.iteration == total:
            reading = score = None
            if main_process:
                reading = evaluate(core, val, task.kind, meta["answer_mode"], max_length, args.eval_batch_size,
                                   top_k=1, hierarchy=meta.get("hierarchy"), progress=main_process)
                score = headline(reading, task.kind)
                core.train()
            if processes > 1:
                score = broadcast_object_list([score])[0]
            if progress.record(score) and main_process:
                save_checkpoint(core, best_dir, meta | {"metrics": {"val": recorded(reading)}}, args.save_weights,
                                args.save_dtype)
                log_shards({"process": accelerator.process_index, "saved": "best", "iteration": progress.iteration})
            accelerator.wait_for_everyone()
        stopped = bool(args.stop_after_iterations) and progress.iteration >= args.stop_after_iterations
        if stopped or progress.iteration % args.save_every == 0 or progress.iteration % per_epoch == 0:
            if main_process:
                save_state(state_dir, core, optimizer, scheduler, progress, run_settings(args))
                log_shards({"process": accelerator.process_index, "saved": "state", "iteration": progress.iteration})
            accelerator.wait_for_everyone()
        if stopped:
            logger.info("stopping after %d iterations as asked; continue with --resume", progress.iteration)
            break
    bar.close()
    # The result, and the test reading of the selected checkpoint
    saved = progress.to_json()
    result = {"best_val": saved["best"], "best_iteration": saved["best_iteration"], "iterations": saved["iteration"],
              "history": saved["history"], "train_seconds": round(time.perf_counter() - start, 1),
              "device": str(accelerator.device)}
    if resuming:
        result["resumed_at_iteration"] = resumed_at
    if not stopped and args.eval_test and main_process:
        result["test"] = test_best(best_dir, task, args)
    if main_process and (best_dir / CONFIG).exists():
        advice = step_advice(read_config(best_dir).metrics.get("val", {}))
        if advice:
            logger.warning(advice)
            result["advice"] = advice
    if main_process:  # the other processes are done: no collective waits on the test (a long one would time out)
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _optional_split(load, data, split: str) -> dict:
    """``{split: its examples}``, or nothing when the data has no such split (the report goes on without it)."""
    try:
        return {split: load(data, split)}
    except (DataError, FileNotFoundError):
        return {}


def prepare_model(task, steps: list[str], answers: list[str], args) -> tuple[CoTTModel, dict | None]:
    """A new model of ``--method``, or the ``--init-from`` checkpoint to continue (and its config), with frozen
    embeddings and LoRA adapters as asked."""
    parent = None
    if args.init_from:
        model, parent = model_from_checkpoint(args.init_from, task, args.method, steps, answers)
    else:
        model = build_model(task, args.method, args.model, steps, answers, args.template, args.pooling,
                            soft_verbalizer=args.soft_verbalizer)
    if args.freeze_embeddings:  # the decoder is tied to them: a compact checkpoint stores the rest
        model.mlm.get_input_embeddings().weight.requires_grad_(False)
    if args.lora_r:
        from peft import LoraConfig, get_peft_model

        model.mlm = get_peft_model(model.mlm, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r,
                                                         target_modules=["query", "value"]))
        for param in model.head_parameters():  # the fresh MLM head trains with the adapters
            param.requires_grad_(True)
    return model, parent


def objective(model: CoTTModel, args, max_length: int, step_answers: dict[str, list[str]] | None = None
              ) -> tuple[LossConfig, TrainingBatcher]:
    """The loss of ``--method`` and its ablations, and the batcher that lays out the rows it reads (counterfactual
    rows when the contrastive loss or the step-following term reads them; ``step_answers`` for the latter)."""
    follow = args.step_following > 0
    loss_cfg = LossConfig(step_weight=args.step_loss_weight, step2=not args.step1_only, contrastive_weight=0.0 if args.no_contrastive else args.lambda_cc,
                          tau=args.tau, in_batch_negatives=args.in_batch_negatives,
                          following_form=args.step_following_form)
    batcher = TrainingBatcher(model, max_length, step2=loss_cfg.step2,
                              counterfactual=loss_cfg.contrastive_weight > 0 or follow,
                              sampling=args.counterfactual_sampling, step_answers=step_answers if follow else None)
    return loss_cfg, batcher


def following_weight(args, iteration: int, total: int) -> float:
    """μ at ``iteration``: ``--step-following``, reached linearly over the first ``--step-following-warmup`` share
    of the iterations (0: from the start)."""
    ramp = args.step_following_warmup * total
    return args.step_following * (min(1.0, iteration / ramp) if ramp > 0 else 1.0)


def parameter_groups(model: CoTTModel, args) -> list[dict]:
    """The trained parameters: the backbone at ``--lr``; the heads at ``--head-lr``, that is the MLM head's own
    (``CoTTModel.head_parameters``) and every parameter outside the masked LM (projection, classifier, soft labels)."""
    backbone = {id(p) for p in model.masked_lm().parameters()} - {id(p) for p in model.head_parameters()}
    trained = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in trained if id(p) in backbone], "lr": args.lr},
            {"params": [p for p in trained if id(p) not in backbone], "lr": args.head_lr}]


def batch_indices(n: int, per_epoch: int, total: int, start: int, lengths: list[int] | None, args) -> Iterator[list[int]]:
    """The training examples of each iteration from ``start`` to ``total``: a shuffle seeded by (seed, epoch), so a
    resumed run meets the batches of an uninterrupted one; with ``lengths``, batches of similar prompt length (the
    same examples per epoch, less padding)."""
    order = None
    for iteration in range(start, total):
        epoch, b = divmod(iteration, per_epoch)
        if order is None or b == 0:
            shuffle = torch.Generator().manual_seed(args.seed * 1000 + epoch)
            if lengths:
                order = get_length_grouped_indices(lengths, args.batch_size, generator=shuffle)
            else:
                order = torch.randperm(n, generator=shuffle).tolist()
        yield order[b * args.batch_size : (b + 1) * args.batch_size]


def test_best(best_dir: Path, task, args) -> dict:
    """Evaluate the selected checkpoint, as reloaded from disk, on the test split: what is shipped is what is measured."""
    model, config = load_checkpoint(best_dir, "cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    loaded = loader_of(task, args.columns)(args.data, "test")
    test = known_examples(model, loaded, "test")
    dropped = len(loaded) - len(test)
    test = sample(test, args.max_test_examples)  # seed 0: every method meets the same test examples
    res = evaluate(model, test, task.kind, config.answer_mode, config.max_length, args.eval_batch_size,
                   hierarchy=config.hierarchy, step_answers=config.step_answers, dropped=dropped)
    logger.info("test:\n%s", summary(res))
    update_config(best_dir, metrics={"test": recorded(res)})
    (best_dir / "metrics_test.json").write_text(json.dumps(res, indent=2))
    return res
