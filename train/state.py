"""Resumable training state in safetensors + JSON (no pickle): trainable weights, optimizer, scheduler, progress."""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

STATE_JSON = "state.json"
# Flags that may differ between an interrupted run and its continuation: they do not change the trained weights.
RESUMABLE = {"resume", "stop_after_iterations", "command", "eval_test", "eval_batch_size", "max_test_examples",
             "save_every", "check", "debug"}


@dataclass
class Progress:
    """Where training stands: optimizer iterations done, the best validation score and its iteration, the history."""

    iteration: int = 0
    best: float = -1.0
    best_iteration: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)  # (iteration, validation score)

    def record(self, score: float) -> bool:
        """Add a validation score at the current iteration; true if it is the best so far."""
        self.history.append((self.iteration, score))
        better = score > self.best
        if better:
            self.best, self.best_iteration = score, self.iteration
        logger.info("iteration %d: val %.4f (best %.4f at iteration %d)", self.iteration, score, self.best,
                    self.best_iteration)
        return better

    def to_json(self) -> dict:
        return {"iteration": self.iteration, "best": self.best, "best_iteration": self.best_iteration,
                "history": [{"iteration": i, "val": v} for i, v in self.history]}

    @classmethod
    def from_json(cls, info: dict) -> Progress:
        """Also a state saved before the counter was named "iteration" (its keys "step", "best_step")."""
        def at(d: dict, key: str):
            return d[key] if key in d else d[key.replace("iteration", "step")]

        return cls(at(info, "iteration"), info["best"], at(info, "best_iteration"),
                   [(at(h, "iteration"), h["val"]) for h in info["history"]])


def run_settings(args) -> dict:
    """The flags that define a run's trajectory, as JSON stores them: a state is only continued under the same ones."""
    return json.loads(json.dumps({k: v for k, v in vars(args).items() if k not in RESUMABLE}))


def state_folder(output_dir: str | Path) -> Path:
    """Where a run keeps its resumable state."""
    return Path(output_dir) / "state"


def check_resumable(path: Path, settings: dict, default: Callable[[str], object]) -> None:
    """Refuse to continue the state in ``path`` under other settings than it was saved with. Older states pass: one
    saved before states stored their settings, and one saved before a flag existed, if it is at ``default(flag)``."""
    try:
        saved = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))["info"].get("run")
    except (json.JSONDecodeError, KeyError, AttributeError) as err:
        raise ValueError(f"--resume: {path / STATE_JSON} is not a training state ({err!r}); "
                         f"remove {path} to train from the start") from None
    if saved is None:
        return
    saved = {k: default(k) for k in settings} | saved
    differ = sorted(k for k in saved.keys() | settings.keys() if saved.get(k) != settings.get(k))
    if differ:
        listed = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} -> {settings.get(k)!r}" for k in differ)
        raise ValueError(f"--resume: the state in {path} was saved by a run with other settings ({listed}); "
                         "resume with the same flags, or train into a new --output-dir")


def save_state(path: Path, model, optimizer, scheduler, progress: Progress, settings: dict) -> None:
    """Write the state and the run's ``settings`` (see ``run_settings``) atomically (temporary folder, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}, tmp / "model.safetensors")
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.contiguous().cpu()
            else:
                scalars[f"{idx}.{k}"] = v
    save_file(tensors, tmp / "optimizer.safetensors")
    meta = {"info": progress.to_json() | {"run": settings}, "param_groups": opt["param_groups"], "optimizer_scalars": scalars, "scheduler": scheduler.state_dict()}
    (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def load_state(path: Path, model, optimizer, scheduler) -> Progress:
    """Restore what ``save_state`` wrote into the model, optimizer and scheduler; returns the progress."""
    meta = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
    weights = load_file(path / "model.safetensors")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    tensors = load_file(path / "optimizer.safetensors")
    device = next(model.parameters()).device
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v if k == "step" else v.to(device)
    for key, v in meta["optimizer_scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    return Progress.from_json(meta["info"])
