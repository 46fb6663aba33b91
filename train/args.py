"""argparse types shared by the command lines (``python -m train``, ``train.evaluate``, ``experiments.*``)."""
from __future__ import annotations

import argparse


def max_length_arg(value: str) -> int:
    """argparse type of ``--max-length``: a positive number of tokens (0 must not fall back to a default)."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be a positive number of tokens")
    return n
