"""The training loop: a plain loop under accelerate, validation-only model selection, resumable state."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from cott.batching import TrainingBatcher, prompt_lengths
from cott.checkpoint import load_checkpoint, save_checkpoint, update_config
from cott.data import sample
from cott.evaluation import evaluate, headline, known_examples, recorded, summary
from cott.losses import LossConfig, cott_loss
from cott.tasks import get_task, hierarchy, label_sets

from .build import build_model, model_from_checkpoint
from .state import check_resumable, load_state, run_settings, save_state
from .warmup import mlm_warmup

logger = logging.getLogger(__name__)


def answer_mode(args) -> str:
    if args.method != "cott" or args.step1_only:
        return "direct"
    return "step2" if args.no_rectification else "rectified"


def run(args) -> dict:
    """Train one model as ``args`` says; returns the final metrics (also written to OUTPUT/metrics.json)."""
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu)
    torch.manual_seed(args.seed)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(args.task)
    train = sample(task.loader(args.data, "train"), args.max_train_examples, args.seed)
    steps, answers = label_sets(train)
    parent = None
    if args.init_from:
        model, parent = model_from_checkpoint(args.init_from, task, args.method, steps, answers, args.pooling,
                                              args.soft_verbalizer)
        args.model, args.mlm_warmup_steps = parent["backbone"], 0  # recorded as run: the parent's head is kept
        args.pooling, args.soft_verbalizer = model.answer.pooling, model.soft_verbalizer
    else:
        model = build_model(task, args.method, args.model, steps, answers, args.template, args.pooling,
                            soft_verbalizer=args.soft_verbalizer)
    val = sample(known_examples(model, task.loader(args.data, "val"), "val"), args.max_eval_examples, args.seed)
    logger.info("%s: %d train / %d val examples, %d steps, %d answers", task.name, len(train), len(val), len(steps), len(answers))

    if args.freeze_embeddings:  # the decoder is tied to them: a compact checkpoint stores the rest
        model.mlm.get_input_embeddings().weight.requires_grad_(False)
    if args.lora_r:
        from peft import LoraConfig, get_peft_model

        model.mlm = get_peft_model(model.mlm, LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules=["query", "value"]))
        for param in model.head_parameters():  # the fresh MLM head trains with the adapters
            param.requires_grad_(True)
    model.to(accelerator.device)
    state_dir, best_dir = out_dir / "state", out_dir / "best"
    resuming = args.resume and (state_dir / "state.json").exists()
    if resuming:
        check_resumable(state_dir, run_settings(args))
    if args.mlm_warmup_steps and args.method != "finetune" and not resuming:  # a resumed state holds the warmed head
        mlm_warmup(model, [e.fields["text"] for e in train], args.mlm_warmup_steps, args.batch_size, args.head_lr,
                   args.max_length, args.seed, progress=accelerator.is_main_process)

    head_names = ("projection", "classifier", "answer_soft", "step_soft", "mlm.cls", "mlm.lm_head")
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(head_names)]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(head_names)]
    optimizer = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}],
                                  weight_decay=args.weight_decay)
    per_epoch = math.ceil(len(train) / args.batch_size)
    total = per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    loss_cfg = LossConfig(step2=not args.step1_only, contrastive_weight=0.0 if args.no_contrastive else args.lambda_cc,
                          tau=args.tau, in_batch_negatives=args.in_batch_negatives)
    batcher = TrainingBatcher(core, args.max_length, step2=loss_cfg.step2, counterfactual=loss_cfg.contrastive_weight > 0)
    mode = answer_mode(args)
    meta = {
        "task": task.name, "kind": task.kind, "method": args.method, "answer_mode": mode, "backbone": args.model,
        "max_length": args.max_length, "description": task.description, "training": vars(args) | {"command": args.command},
    }
    if task.kind == "classification":
        meta["hierarchy"] = hierarchy(train)
    if parent is not None:  # the weights' history: what trained the checkpoint this run continues
        meta["init_from"] = {"path": args.init_from, "training": parent.get("training"),
                             "val": parent.get("metrics", {}).get("val")}
        if "init_from" in parent:  # a chain of continuations keeps every link
            meta["init_from"]["init_from"] = parent["init_from"]

    info = {"step": 0, "best": -1.0, "best_step": 0, "history": [], "run": run_settings(args)}
    if resuming:
        info = load_state(state_dir, core, optimizer, scheduler) | {"run": info["run"]}
        resumed_at = info["step"]
        logger.info("resumed from %s at step %d", state_dir, resumed_at)

    def validate():
        res = evaluate(core, val, task.kind, mode, args.max_length, args.eval_batch_size, top_k=1,
                       hierarchy=meta.get("hierarchy"), progress=accelerator.is_main_process)
        score = headline(res, task.kind)
        info["history"].append({"step": info["step"], "val": score})
        if score > info["best"]:
            info.update(best=score, best_step=info["step"])
            meta["metrics"] = {"val": recorded(res)}
            if accelerator.is_main_process:
                save_checkpoint(core, best_dir, meta, args.save_weights, args.save_dtype)
        logger.info("step %d: val %.4f (best %.4f at step %d)", info["step"], score, info["best"], info["best_step"])
        core.train()

    lengths = prompt_lengths(core, train, args.max_length) if args.group_by_length else None
    eval_every = args.eval_every or per_epoch
    bar = tqdm(total=total, initial=info["step"], desc=f"train {args.method}", disable=not accelerator.is_main_process)
    start = time.perf_counter()
    model.train()
    stopped = False
    while info["step"] < total and not stopped:
        epoch, skip = divmod(info["step"], per_epoch)
        shuffle = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        if lengths:  # batches of similar lengths pad less: same examples per epoch, fewer tokens per step
            order = get_length_grouped_indices(lengths, args.batch_size, generator=shuffle)
        else:
            order = torch.randperm(len(train), generator=shuffle).tolist()
        for b in range(skip, per_epoch):
            # Randomness keyed by (seed, step), so a resumed run repeats an uninterrupted one exactly.
            torch.manual_seed(args.seed * 1_000_003 + info["step"])
            examples = [train[i] for i in order[b * args.batch_size : (b + 1) * args.batch_size]]
            batch = batcher(examples, random.Random(args.seed * 1_000_003 + info["step"]))
            with accelerator.autocast():
                loss, parts = cott_loss(model, batch, loss_cfg)
            accelerator.backward(loss)
            if args.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            info["step"] += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
            if info["step"] % eval_every == 0 or info["step"] == total:
                validate()
            if accelerator.is_main_process and (info["step"] % args.save_every == 0 or info["step"] % per_epoch == 0):
                save_state(state_dir, core, optimizer, scheduler, info)
            if args.stop_after_steps and info["step"] >= args.stop_after_steps:
                if accelerator.is_main_process:
                    save_state(state_dir, core, optimizer, scheduler, info)
                logger.info("stopping after %d steps as asked; continue with --resume", info["step"])
                stopped = True
                break
    bar.close()
    result = {"best_val": info["best"], "best_step": info["best_step"], "steps": info["step"], "history": info["history"],
              "train_seconds": round(time.perf_counter() - start, 1), "device": str(accelerator.device)}
    if resuming:
        result["resumed_at_step"] = resumed_at
    if not stopped and args.eval_test and accelerator.is_main_process:
        result["test"] = test_best(best_dir, task, args)
    if accelerator.is_main_process:
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def test_best(best_dir: Path, task, args) -> dict:
    """Evaluate the selected checkpoint, as reloaded from disk, on the test split: what is shipped is what is measured."""
    model, config = load_checkpoint(best_dir, "cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    test = known_examples(model, task.loader(args.data, "test"), "test")
    test = sample(test, args.max_test_examples)  # seed 0: every method meets the same test examples
    res = evaluate(model, test, task.kind, config["answer_mode"], config["max_length"], args.eval_batch_size,
                   hierarchy=config.get("hierarchy"))
    logger.info("test:\n%s", summary(res))
    update_config(best_dir, metrics={"test": recorded(res)})
    (best_dir / "metrics_test.json").write_text(json.dumps(res, indent=2))
    return res
