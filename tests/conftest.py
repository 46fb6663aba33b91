"""Session fixtures over tests/helpers.py: a tiny BERT, a tiny RoBERTa and the toy dataset, built once, no downloads.

Only fixtures live here; tests import plain helpers from ``helpers``, never from ``conftest``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import build_tiny_bert, build_tiny_distilbert, build_tiny_roberta, write_toy_data


def _built(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` into a fresh tmp folder; with COTT_TEST_FIXTURES set (tests/mutation/run sets it), into
    that folder once and reused by later pytest sessions, since the builds are seeded and never change."""
    cache = os.environ.get("COTT_TEST_FIXTURES")
    if not cache:
        return build(tmp_path_factory.mktemp(name))
    folder = Path(cache) / name
    if not folder.is_dir():
        Path(cache).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache))
        build(tmp)
        try:
            os.rename(tmp, folder)  # atomic: a parallel session sees the whole folder or none
        except OSError:  # another session finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def datasets_cache(tmp_path_factory):
    """The loaders' Arrow rows (``cott.examples``) in a session folder, never the home datasets cache; the training
    subprocesses that tests start inherit it."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf_datasets")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """Generic JSON-lines dataset folder: train/val/test.jsonl."""
    return _built(tmp_path_factory, "toy_data", write_toy_data)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT masked LM with a WordPiece vocabulary, saved as a local model folder (seeded: the same weights
    whichever tests run first)."""
    return _built(tmp_path_factory, "tiny_bert", lambda d: build_tiny_bert(d, seed=0))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    """A 2-layer RoBERTa masked LM with a byte-level BPE tokenizer trained on a toy corpus."""
    return _built(tmp_path_factory, "tiny_roberta", lambda d: build_tiny_roberta(d, seed=0))


@pytest.fixture(scope="session")
def lively_bert(tmp_path_factory) -> Path:
    """The tiny BERT with larger random weights (initializer_range 0.3): its probabilities differ clearly from
    input to input and from step to step, so a mixed-up row or column shows (the default tiny BERT answers
    every input almost alike). Seed 1 gives the relation inputs of test_inference.py four different Î."""
    return _built(tmp_path_factory, "lively_bert", lambda d: build_tiny_bert(d, seed=1, initializer_range=0.3))


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    """A 1-layer DistilBERT masked LM over the tiny BERT's vocabulary."""
    return _built(tmp_path_factory, "tiny_distilbert", lambda d: build_tiny_distilbert(d, seed=0))
