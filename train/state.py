"""Resumable training state in safetensors + JSON (no pickle): trainable weights, optimizer, scheduler, counters."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_JSON = "state.json"
# Flags that may differ between an interrupted run and its continuation: they do not change the trained weights.
RESUMABLE = {"resume", "stop_after_steps", "command", "eval_test", "eval_batch_size", "max_test_examples", "save_every"}


def run_settings(args) -> dict:
    """The flags that define a run's trajectory, as JSON stores them: a state is only continued under the same ones."""
    return json.loads(json.dumps({k: v for k, v in vars(args).items() if k not in RESUMABLE}))


def check_resumable(path: Path, settings: dict) -> None:
    """Refuse to continue the state in ``path`` under other settings than it was saved with (older states pass)."""
    try:
        saved = json.loads((path / STATE_JSON).read_text())["info"].get("run")
    except (json.JSONDecodeError, KeyError, AttributeError) as err:
        raise ValueError(f"--resume: {path / STATE_JSON} is not a training state ({err!r}); "
                         f"remove {path} to train from the start") from None
    if saved is None:
        return
    differ = sorted(k for k in saved.keys() | settings.keys() if saved.get(k) != settings.get(k))
    if differ:
        listed = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} -> {settings.get(k)!r}" for k in differ)
        raise ValueError(f"--resume: the state in {path} was saved by a run with other settings ({listed}); "
                         "resume with the same flags, or train into a new --output-dir")


def save_state(path: Path, model, optimizer, scheduler, info: dict) -> None:
    """Write the state atomically (temporary folder, then rename)."""
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
    meta = {"info": info, "param_groups": opt["param_groups"], "optimizer_scalars": scalars, "scheduler": scheduler.state_dict()}
    (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def load_state(path: Path, model, optimizer, scheduler) -> dict:
    """Restore what ``save_state`` wrote; returns its ``info`` (step, epoch, best score ...)."""
    meta = json.loads((path / STATE_JSON).read_text())
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
    return meta["info"]
