"""Data-parallel pieces of the training loop: each process's share of an iteration's batch, and their losses combined."""
from __future__ import annotations

import json
import os
from typing import Callable, Iterator

import torch
from torch.utils.data import Dataset


def check_processes(args, processes: int) -> None:
    """Refuse what data-parallel training cannot do as one process would: a batch that does not split evenly, and
    in-batch negatives (each process would only see its own share's)."""
    if processes == 1:
        return
    if args.batch_size % processes:
        raise ValueError(f"--batch-size {args.batch_size} is the batch of all {processes} processes together and "
                         f"must split evenly between them: use a multiple of {processes}")
    if args.in_batch_negatives:
        raise ValueError(f"--in-batch-negatives under {processes} processes would draw the negatives from each "
                         "process's share of the batch only: train it in one process")


class ExampleIndices(Dataset):
    """The training examples by index (the loop encodes them: the batcher reads the model)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


class IterationBatches:
    """A batch sampler of the ``length`` batches of ``order()`` (one per iteration), laid out for ``processes`` processes that each
    take a slice of ``batch_size / processes`` places, as ``accelerate``'s ``split_batches`` hands them out: the
    p-th slice holds the p-th of the batch's balanced contiguous shares (``shares``), padded with -1 when the batch
    is short (the last of an epoch), so every yielded batch is full and none is dropped or refilled."""

    drop_last = False

    def __init__(self, order: Callable[[], Iterator[list[int]]], length: int, batch_size: int, processes: int):
        self.order, self.length, self.batch_size, self.processes = order, length, batch_size, processes

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[list[int]]:
        places = self.batch_size // self.processes
        for whole in self.order():
            bounds = shares(len(whole), self.processes)
            yield [i for lo, hi in zip(bounds, bounds[1:]) for i in whole[lo:hi] + [-1] * (places - (hi - lo))]


def shares(n: int, processes: int) -> list[int]:
    """Bounds of ``processes`` contiguous shares of ``n`` examples whose sizes differ by one at most."""
    return [p * n // processes for p in range(processes + 1)]


def own_share(whole: list[int], places: list[int], processes: int, index: int) -> tuple[list[int], list[int], float]:
    """This process's examples of the iteration's batch ``whole`` (its ``places`` from the loader), the examples
    before them in ``whole``, and the weight of its mean loss that makes DDP's mean over processes the whole
    batch's mean. A process whose share is empty (a batch shorter than the process count) trains the first example
    at weight 0: every process takes part in each gradient all-reduce."""
    bounds = shares(len(whole), processes)
    mine = [i for i in places if i >= 0]
    if mine != whole[bounds[index] : bounds[index + 1]]:
        raise RuntimeError(f"process {index} was handed {mine}, not its share of {whole}")
    if not mine:
        return whole[:1], [], 0.0
    return mine, whole[: bounds[index]], processes * len(mine) / len(whole)


def whole_batch_parts(accelerator, parts: dict[str, float], n: int, total: int) -> dict[str, float]:
    """The loss parts of the whole batch: the processes' means (over ``n`` of ``total`` examples each) combined."""
    names = sorted(parts)
    local = torch.tensor([parts[k] * n for k in names], dtype=torch.float64, device=accelerator.device)
    summed = accelerator.reduce(local, "sum").tolist()
    return {k: v / total for k, v in zip(names, summed)}


def log_shards(record: dict) -> None:
    """With COTT_LOG_SHARDS=PATH, append ``record`` to PATH as a JSON line (tests read which process trained which
    examples and who saved what)."""
    path = os.environ.get("COTT_LOG_SHARDS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
