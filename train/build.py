"""Build the model of a training method for a task: CoTT, single-step prompt tuning, or fine-tuning."""
from __future__ import annotations

from cott.backbones import load_masked_lm, load_tokenizer
from cott.checkpoint import load_checkpoint, read_config
from cott.config import CheckpointConfig
from cott.model import CoTTModel
from cott.tasks import Task
from cott.template import Template
from cott.verbalizer import Verbalizer

METHODS = ("cott", "prompt", "finetune")


def answer_mode(args) -> str:
    """How a trained model answers: p(y|x) for the baselines and Step I only, else Step II, rectified or not."""
    if args.method != "cott" or args.step1_only:
        return "direct"
    return "step2" if args.no_rectification else "rectified"


def build_model(task: Task, method: str, backbone: str, steps: list[str], answers: list[str],
                template: str | None = None, pooling: str = "mean", proj_dim: int = 128,
                soft_verbalizer: bool = True) -> CoTTModel:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    tokenizer = load_tokenizer(backbone)
    mlm = load_masked_lm(backbone)
    answer = Verbalizer(answers, {k: v for k, v in task.answer_words.items() if k in answers}, pooling)
    if method == "cott":
        step = Verbalizer(steps, {k: v for k, v in task.step_words.items() if k in steps}, pooling)
        return CoTTModel(mlm, tokenizer, Template(template or task.template), answer, step, proj_dim=proj_dim,
                         soft_verbalizer=soft_verbalizer)
    if method == "prompt":
        return CoTTModel(mlm, tokenizer, Template(template or task.prompt_template), answer, proj_dim=proj_dim,
                         soft_verbalizer=soft_verbalizer)
    return CoTTModel(mlm, tokenizer, Template(template or task.finetune_template), answer, answer_head="linear", proj_dim=proj_dim)


def continued_settings(path: str, pooling: str | None = None, soft_verbalizer: bool | None = None) -> dict:
    """The settings a checkpoint fixes for the run that continues it: its backbone and verbalizers, and no MLM
    warm-up (its head is trained). ``pooling`` and ``soft_verbalizer``, when given, must be its own."""
    config = read_config(path)
    own = {"pooling": Verbalizer.from_dict(config.answer_verbalizer).pooling, "soft_verbalizer": config.soft_verbalizer}
    for name, asked in (("pooling", pooling), ("soft_verbalizer", soft_verbalizer)):
        if asked is not None and asked != own[name]:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"--init-from {path}: the checkpoint was trained with {flag}={own[name]!r}, not "
                             f"{asked!r}; drop {flag} to keep its own")
    return {"model": config.backbone, "mlm_warmup_steps": 0, **own}


def model_from_checkpoint(path: str, task: Task, method: str, steps: list[str],
                          answers: list[str]) -> tuple[CoTTModel, CheckpointConfig]:
    """Continue training a checkpoint of the same task and method; returns the model and the checkpoint's config."""
    model, config = load_checkpoint(path)
    if config.task != task.name or config.method != method:
        raise ValueError(f"--init-from {path}: a {config.task!r} {config.method!r} checkpoint cannot "
                         f"continue as {task.name!r} {method!r}")
    unknown = set(answers) - set(model.answer.labels)
    if model.step is not None:
        unknown |= set(steps) - set(model.step.labels)
    if unknown:
        raise ValueError(f"--init-from {path}: the training data has labels the checkpoint lacks: {sorted(unknown)[:5]}")
    model.step_temperature = 1.0  # new weights: a calibration of the old ones does not carry over
    model.train()
    return model, config
