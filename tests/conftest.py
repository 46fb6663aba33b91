"""Session fixtures over tests/helpers.py: a tiny BERT, a tiny RoBERTa and the toy dataset, built once, no downloads.

Only fixtures live here; tests import plain helpers from ``helpers``, never from ``conftest``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import build_tiny_bert, build_tiny_roberta, write_toy_data


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """Generic JSON-lines dataset folder: train/val/test.jsonl."""
    return write_toy_data(tmp_path_factory.mktemp("toy_data"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT masked LM with a WordPiece vocabulary, saved as a local model folder (seeded: the same weights
    whichever tests run first)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), seed=0)


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A 2-layer RoBERTa masked LM with a byte-level BPE tokenizer trained on a toy corpus."""
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny_roberta"), seed=0)


@pytest.fixture(scope="session")
def lively_bert(tmp_path_factory) -> Path:
    """The tiny BERT with larger random weights (initializer_range 0.3): its probabilities differ clearly from
    input to input and from step to step, so a mixed-up row or column shows (the default tiny BERT answers
    every input almost alike). Seed 1 gives the relation inputs of test_inference.py four different Î."""
    return build_tiny_bert(tmp_path_factory.mktemp("lively_bert"), seed=1, initializer_range=0.3)
