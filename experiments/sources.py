"""The command line that the checkpoint experiments share: a checkpoint, and its inputs from a dataset split or a file."""
from __future__ import annotations

import argparse


def checkpoint_parser(description: str, data_help: str, file_help: str) -> argparse.ArgumentParser:
    """A parser with ``--checkpoint``, one of ``--data`` (read with the checkpoint's task loader) or ``--file``,
    ``--split`` and ``--task``; the caller adds its own options."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or hub id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help=data_help)
    src.add_argument("--file", help=file_help)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--task", help="task name for --data (default: the checkpoint's)")
    return p
