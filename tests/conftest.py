"""Tiny BERT and RoBERTa masked LMs with tokenizers written into tmp folders: fast tests, no downloads."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from transformers import BertConfig, BertForMaskedLM, BertTokenizer, RobertaConfig, RobertaForMaskedLM

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("COTT_DATA_DIR", ROOT.parent / "shared" / "data"))

# A toy two-level hierarchy: the step is the kind of thing, the answer the thing.
TOY = {"animal": ["cat", "dog", "horse"], "vehicle": ["car", "bus", "truck"]}
WORDS = ["i", "saw", "a", "today", "there", "is", "near", "the", "house", "my", "friend", "likes", "this", "kind",
         "label", "category", "big", "small", "red", "ada", "works", "for", "acme", "lives", "in", "paris", "person",
         "organization", "location", "other", "unrelated", "to", "based", "located", "killed", "and", "of", "no",
         "relation", "domain", "intent", "area", "computer", "science", ".", ",", ":", '"', "##s", "##ing", "##ed"]


def toy_examples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    frames = ["i saw a {} today", "there is a {} near the house", "my friend likes this {}", "a big red {}", "the small {}"]
    out = []
    for _ in range(n):
        step = rng.choice(sorted(TOY))
        label = rng.choice(TOY[step])
        out.append({"text": rng.choice(frames).format(label), "step": step, "label": label})
    return out


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """Generic JSON-lines dataset folder: train/val/test.jsonl."""
    d = tmp_path_factory.mktemp("toy_data")
    for split, n, seed in (("train", 96, 0), ("val", 24, 1), ("test", 24, 2)):
        (d / f"{split}.jsonl").write_text("\n".join(json.dumps(e) for e in toy_examples(n, seed)) + "\n")
    return d


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT masked LM with a WordPiece vocabulary, saved as a local model folder."""
    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS + [w for ws in TOY.values() for w in ws] + sorted(TOY)))
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab=str(d / "vocab.txt"))
    tok.save_pretrained(d)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A 2-layer RoBERTa masked LM with a byte-level BPE tokenizer trained on a toy corpus."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    d = tmp_path_factory.mktemp("tiny_roberta")
    corpus = [e["text"] for e in toy_examples(200)] + [" ".join(WORDS)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(d))
    tok = RobertaTokenizerFast(vocab=str(d / "vocab.json"), merges=str(d / "merges.txt"))
    tok.save_pretrained(d)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=130, pad_token_id=tok.pad_token_id)
    RobertaForMaskedLM(config).save_pretrained(d)
    return d


def needs_data(*parts: str) -> Path:
    """The path of a real dataset under ../shared/data, or skip the test with the reason."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset {path} is absent (set COTT_DATA_DIR or place ../shared/data beside the project)")
    return path
