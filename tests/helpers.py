"""Shared test helpers that are not fixtures."""
from __future__ import annotations


def train_args(model, data, out, *extra) -> list[str]:
    """``python -m train`` arguments for a fast run of a tiny model on the toy data."""
    return ["--task", "jsonl", "--data", str(data), "--model", str(model), "--output-dir", str(out),
            "--epochs", "2", "--batch-size", "16", "--max-length", "48", "--lr", "1e-3", "--head-lr", "1e-3",
            "--save-every", "3", *extra]
