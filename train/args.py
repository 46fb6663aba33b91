"""argparse types shared by the command lines (``python -m train``, ``train.evaluate``, ``experiments.*``)."""
from __future__ import annotations

import argparse
import contextlib
import sys

from cott.checkpoint import CheckpointError
from cott.data import DataError, column_names

# What a user's data, checkpoint or flags can get wrong: one line and exit status 2, not a traceback
USER_ERRORS = (DataError, CheckpointError, FileNotFoundError, NotADirectoryError, PermissionError, ValueError, KeyError)


def max_length_or_auto(value: str) -> int | str:
    """argparse type of training's ``--max-length``: a positive number of tokens, or ``auto`` (fitted to the data)."""
    return value if value == "auto" else max_length_arg(value)


def max_length_arg(value: str) -> int:
    """argparse type of ``--max-length``: a positive number of tokens (0 must not fall back to a default)."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be a positive number of tokens")
    return n


def columns_arg(spec: str) -> dict[str, str]:
    """argparse type of ``--columns``: ours=theirs pairs, e.g. ``text=utterance,label=intent``."""
    try:
        return column_names(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


@contextlib.contextmanager
def user_errors(prog: str, argv: list[str]):
    """Turn a user error raised inside into ``PROG: error: MESSAGE`` on stderr and exit status 2, as argparse does
    for a bad flag; with ``--debug`` in ``argv`` the traceback is kept."""
    try:
        yield
    except USER_ERRORS as err:
        if "--debug" in argv:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
