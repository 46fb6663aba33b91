"""Shared test helpers: the one tiny-model builder, the toy data, real-data lookup and training arguments.

Tests import these from here (``from helpers import ...``), never from ``conftest``; conftest.py only turns
them into pytest fixtures.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Iterable

import pytest

from cott.config import CheckpointConfig

ROOT = Path(__file__).resolve().parents[1]  # pyproject.toml's pytest `pythonpath` puts it on sys.path
DATA_DIR = Path(os.environ.get("COTT_DATA_DIR", ROOT.parent / "shared" / "data"))

BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The size of every tiny test backbone: seconds to build and to train a few steps on two CPU cores.
TINY_SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}

# A toy two-level hierarchy: the step is the kind of thing, the answer the thing.
TOY = {"animal": ["cat", "dog", "horse"], "vehicle": ["car", "bus", "truck"]}
WORDS = ["i", "saw", "a", "today", "there", "is", "near", "the", "house", "my", "friend", "likes", "this", "kind",
         "label", "category", "big", "small", "red", "ada", "works", "for", "acme", "lives", "in", "paris", "person",
         "organization", "location", "other", "unrelated", "to", "based", "located", "killed", "and", "of", "no",
         "relation", "domain", "intent", "area", "computer", "science", ".", ",", ":", '"', "##s", "##ing", "##ed"]
TOY_VOCAB = sorted(set(WORDS + [w for ws in TOY.values() for w in ws] + sorted(TOY)))


def build_tiny_bert(folder: str | Path, words: Iterable[str] = TOY_VOCAB, seed: int | None = None,
                    max_position_embeddings: int = 128, **config) -> Path:
    """Write a 2-layer, 32-wide random BERT masked LM with a WordPiece vocabulary of ``words`` into ``folder``.

    The vocabulary is BERT's special tokens then ``words`` in their order (duplicates dropped). With ``seed``
    the weights are drawn after ``torch.manual_seed(seed)``; ``config`` overrides other ``BertConfig`` fields
    (``initializer_range=0.5`` gives outputs that differ clearly from input to input). Returns the folder, loadable by path like any
    backbone (``AutoModelForMaskedLM.from_pretrained(folder)``, ``--model folder``).
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys(BERT_SPECIAL + list(words)))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    if seed is not None:
        torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=max_position_embeddings, **(TINY_SIZE | config))
    BertForMaskedLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_distilbert(folder: str | Path, seed: int | None = None) -> Path:
    """Write a 1-layer DistilBERT masked LM over the toy WordPiece vocabulary into ``folder`` (its MLM head is laid
    out unlike BERT's: vocab_transform, vocab_layer_norm, vocab_projector)."""
    import torch
    from transformers import BertTokenizer, DistilBertConfig, DistilBertForMaskedLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(BERT_SPECIAL + TOY_VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    if seed is not None:
        torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=37,
                              max_position_embeddings=128, initializer_range=0.3)
    DistilBertForMaskedLM(config).save_pretrained(folder)
    return folder


def build_tiny_roberta(folder: str | Path, seed: int | None = None) -> Path:
    """Write a 2-layer RoBERTa masked LM with a byte-level BPE tokenizer trained on the toy corpus into ``folder``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [e["text"] for e in toy_examples(200)] + [" ".join(WORDS)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tok = RobertaTokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tok.save_pretrained(folder)
    if seed is not None:
        torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tok), max_position_embeddings=130, pad_token_id=tok.pad_token_id, **TINY_SIZE)
    RobertaForMaskedLM(config).save_pretrained(folder)
    return folder


def toy_examples(n: int, seed: int = 0) -> list[dict]:
    """``n`` toy examples {"text", "step", "label"} of the TOY hierarchy, drawn with ``seed``."""
    rng = random.Random(seed)
    frames = ["i saw a {} today", "there is a {} near the house", "my friend likes this {}", "a big red {}", "the small {}"]
    out = []
    for _ in range(n):
        step = rng.choice(sorted(TOY))
        label = rng.choice(TOY[step])
        out.append({"text": rng.choice(frames).format(label), "step": step, "label": label})
    return out


def write_toy_data(folder: str | Path) -> Path:
    """The generic JSON-lines dataset layout: train (96), val (24) and test (24) .jsonl files in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 96, 0), ("val", 24, 1), ("test", 24, 2)):
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(e) for e in toy_examples(n, seed)) + "\n")
    return folder


def needs_data(*parts: str) -> Path:
    """The path of a real dataset under ../shared/data, or skip the test with the reason."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset {path} is absent (set COTT_DATA_DIR or place ../shared/data beside the project)")
    return path


def train_args(model, data, out, *extra) -> list[str]:
    """``python -m train`` arguments for a fast run of a tiny model on the toy data."""
    return ["--task", "jsonl", "--data", str(data), "--model", str(model), "--output-dir", str(out),
            "--epochs", "2", "--batch-size", "16", "--max-length", "48", "--lr", "1e-3", "--head-lr", "1e-3",
            "--save-every", "3", *extra]


def toy_model(backbone, data, method: str = "cott", seed: int = 0, **kwargs):
    """A CoTT model (or baseline) of the toy task over ``backbone``, and the toy training examples."""
    import torch

    from cott import get_task
    from cott.data import load_jsonl
    from cott.tasks import label_sets
    from train.build import build_model

    examples = load_jsonl(data, "train")
    steps, answers = label_sets(examples)
    torch.manual_seed(seed)
    return build_model(get_task("jsonl"), method, str(backbone), steps, answers, **kwargs), examples


def toy_pipeline(backbone, data, folder, **meta):
    """A ``CoTTPipeline`` on CPU over a freshly built toy-task CoTT model (seed 0), saved into ``folder``; ``meta``
    adds to ``toy_meta``."""
    from cott import CoTTPipeline, save_checkpoint

    model, _ = toy_model(backbone, data)
    path = save_checkpoint(model, Path(folder) / "toy", toy_meta(backbone, **meta))
    return CoTTPipeline.from_pretrained(str(path), device="cpu")


def typed_config(**keys) -> CheckpointConfig:
    """A ``CheckpointConfig`` with the keys every ``cott.json`` has, and ``keys``."""
    return CheckpointConfig.from_json({"template": "[T] It is [A].", "backbone": "tiny", "answer_head": "verbalizer",
                                       "answer_verbalizer": {"labels": ["a", "b"]}, "weights": "full", **keys})


def toy_meta(backbone, **extra) -> dict:
    """The ``meta`` that ``save_checkpoint`` needs for a toy-task model over ``backbone``."""
    return {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(backbone), "max_length": 48,
            **extra}
