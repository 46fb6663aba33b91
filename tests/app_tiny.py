"""Helpers for the app tests: tiny random CoTT checkpoints (seconds to build, no downloads) and a free port."""
from __future__ import annotations

import socket
from pathlib import Path

import torch
from transformers import BertForMaskedLM, BertTokenizer

from cott import CoTTModel, Template, Verbalizer, save_checkpoint
from helpers import ROOT, build_tiny_bert

WORDS = (
    "the domain is . intent : a an of to in for my what how is it and with at on please set timer "
    "banking travel utility balance transfer book flight weather alarm money account trip minutes "
    "person organization location other works lives located based killed unrelated \" ada acme paris "
    "lovelace ltd london founded by born met"
).split()

CLASSIFICATION = {
    "task": "tinyintent",
    "template": "[T] The domain is [C] . The intent is [A] .",
    "answers": {"balance": ["balance"], "transfer": ["transfer"], "book_flight": ["flight"], "weather": ["weather"],
                "set_alarm": ["alarm"], "timer": ["timer"]},
    "steps": {"banking": ["banking"], "travel": ["travel"], "utility": ["utility"]},
    "description": "Tiny random intent classifier (test model): domain -> intent.",
    "examples": ["what is my balance", "book a flight to paris", "set a timer for ten minutes"],
}
RELATION = {
    "task": "tinyrel",
    "template": "[T] The [C] \" [T:subj] \" and the [C] \" [T:obj] \" : \" [T:subj] \" [A] \" [T:obj] \" .",
    "answers": {"Work_For": ["works for"], "Live_In": ["lives in"], "OrgBased_In": ["based in"],
                "no_relation": ["unrelated to"]},
    "steps": {"Peop": ["person"], "Org": ["organization"], "Loc": ["location"]},
    "description": "Tiny random relation classifier (test model): subject and object types -> relation.",
    "examples": ["[[Ada]] works for {{Acme}} in Paris.", "[[Acme Ltd]] is based in {{London}}."],
}


def build_tiny_checkpoint(root: Path, spec: dict, kind: str, seed: int = 0) -> Path:
    """The tests' one tiny BERT (helpers.build_tiny_bert) with this app vocabulary, as a CoTT checkpoint at root/<task>."""
    root = Path(root)
    backbone = build_tiny_bert(root / f"{spec['task']}_backbone", WORDS, seed=seed)
    mlm, tokenizer = BertForMaskedLM.from_pretrained(backbone), BertTokenizer.from_pretrained(backbone)
    torch.manual_seed(seed)  # the heads' initialisation
    model = CoTTModel(mlm, tokenizer, Template(spec["template"]), Verbalizer(list(spec["answers"]), spec["answers"]),
                      Verbalizer(list(spec["steps"]), spec["steps"]), proj_dim=16)
    meta = {"task": spec["task"], "kind": kind, "method": "cott", "backbone": str(backbone), "max_length": 64,
            "description": spec["description"], "metrics": {"accuracy": 0.5}, "training": {"note": "random test model"}}
    return save_checkpoint(model, root / spec["task"], meta=meta, weights="full")


def tiny_checkpoints(root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Two tiny checkpoints (classification, relation) and their examples, keyed by task."""
    dirs = [build_tiny_checkpoint(root, CLASSIFICATION, "classification", 0),
            build_tiny_checkpoint(root, RELATION, "relation", 1)]
    return [str(d) for d in dirs], {CLASSIFICATION["task"]: CLASSIFICATION["examples"], RELATION["task"]: RELATION["examples"]}


def pick_checkpoints(tmp_root: Path) -> tuple[list[str], dict | None, str]:
    """assets/ if trained checkpoints are there, else /tmp/cott_dev, else tiny ones; COTT_APP_TEST_MODELS=tiny forces tiny.

    Returns (checkpoint dirs, examples (None = assets/examples.json), which)."""
    import os

    if os.environ.get("COTT_APP_TEST_MODELS", "auto") != "tiny":
        for base, which in ((ROOT / "assets", "assets"), (Path("/tmp/cott_dev"), "dev")):
            dirs = [base / "clinc150", base / "conll04"]
            if all((d / "cott.json").exists() for d in dirs):
                return [str(d) for d in dirs], None, which
    dirs, examples = tiny_checkpoints(tmp_root)
    return dirs, examples, "tiny"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
