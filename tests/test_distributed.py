"""Data-parallel training: ``accelerate launch`` of ``python -m train`` on two CPU processes (gloo) trains each
iteration's batch split between them and ends where one process training the same global batch ends.

The launch is configured by flags only (no ``accelerate config`` file is read for anything the flags set). Note the
launcher: accelerate's ``--cpu`` launcher starts ONE process unless MPI is set up (``--mpirun_hostfile``), so
``accelerate launch --cpu --num_processes 2`` trains alone; the torchrun launcher (``--multi_gpu``) starts the two
processes, and train's own ``--cpu`` keeps them on the CPU with the gloo backend. The shard log proves there were two.
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import ROOT, build_tiny_bert, train_args, toy_model
from train.cli import main as train_main

# 96 toy examples, global batch 16: 6 iterations an epoch, 2 epochs, validation (and best/) at 6 and 12. Two MLM
# warm-up iterations: each process warms up alike before DDP starts from the main process's weights.
RUN = ("--cpu", "--mlm-warmup-steps", "2")
ITERATIONS, PER_EPOCH, BATCH = 12, 6, 16
# An attention key bias adds the same amount to every score of a query: softmax ignores it, so its gradient is zero
# in exact arithmetic, and Adam turns the rounding noise of a differently summed (split) batch into steps of about
# ±lr. These tensors carry no training signal in either run; every other tensor must agree within TOLERANCE.
NO_SIGNAL = "attention.self.key.bias"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """The tiny BERT without dropout (two processes draw other dropout masks than one) and with larger random
    weights (initializer_range 0.3): the default tiny BERT answers all inputs alike, and its near-zero gradients would
    let Adam amplify rounding noise in every head."""
    return build_tiny_bert(tmp_path_factory.mktemp("bert_nodropout"), seed=1, initializer_range=0.3,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _free_port() -> int:
    with socket.socket() as s:  # engineers sharing the machine may launch at the same time: no fixed 29500
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], shards: Path, processes: int = 2) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes N ... -m train ARGS`` from the repository root, offline."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "train", *args]
    env = os.environ | {"COTT_LOG_SHARDS": str(shards), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                        "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def trained(path: Path) -> dict[tuple[int, int], list[int]]:
    """(process, iteration) -> the examples it trained on."""
    return {(r["process"], r["iteration"]): r["examples"] for r in records(path) if "examples" in r}


def assert_weights_close(out, reference, atol: float, skip: str | None = None):
    for folder in ("state", "best"):
        got, want = load_file(out / folder / "model.safetensors"), load_file(reference / folder / "model.safetensors")
        assert got.keys() == want.keys()
        for name in want:
            if skip and skip in name:
                continue
            diff = (got[name] - want[name]).abs().max().item()
            assert diff <= atol, f"{folder}/{name} differs by {diff}"


@pytest.fixture(scope="module")
def single(backbone, toy_data, tmp_path_factory, ):
    """One process, in this one: the reference, with its batches logged too."""
    out = tmp_path_factory.mktemp("single")
    shards = out.parent / "single.shards.jsonl"
    os.environ["COTT_LOG_SHARDS"] = str(shards)
    try:
        result = train_main(train_args(backbone, toy_data, out, *RUN))
    finally:
        del os.environ["COTT_LOG_SHARDS"]
    return out, result, shards


@pytest.fixture(scope="module")
def two(backbone, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    shards = out.parent / "two.shards.jsonl"
    done = launch(train_args(backbone, toy_data, out, *RUN), shards)
    return out, done, shards


def test_two_processes_train_disjoint_halves_of_each_batch(single, two):
    _, _, single_shards = single
    out, done, shards = two
    alone, split = trained(single_shards), trained(shards)
    assert sorted(split) == [(p, i) for p in (0, 1) for i in range(ITERATIONS)]  # two processes, every iteration
    for i in range(ITERATIONS):
        first, second = split[0, i], split[1, i]
        assert len(first) == len(second) == BATCH // 2
        assert first + second == alone[0, i]  # the global batch is the single process's batch, split in two
    for epoch in range(2):
        iterations = range(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH)
        first = [e for i in iterations for e in split[0, i]]
        second = [e for i in iterations for e in split[1, i]]
        assert not set(first) & set(second)
        assert sorted(first + second) == list(range(96))  # each process half of the epoch, together all of it
    assert done.stdout.count('"best_val"') == 1  # the result is printed once


def test_each_process_ends_without_the_interpreters_teardown_after_its_work(two):
    """Torn down by the interpreter, the gloo process group's worker thread takes the GIL while Python is finalised and
    a process aborts now and then (SIGABRT, exit -6); destroyed by hand before, the DDP wrapper's destructor joins that
    thread holding the GIL it waits for (a hang, seen once). Each process of a launch ends with os._exit instead, once
    everything is written."""
    out, _, shards = two
    logged = records(shards)
    assert sorted(r["process"] for r in logged if "exit" in r) == [0, 1]
    assert [list(r) for r in logged if "exit" in r] == [["process", "exit"]] * 2
    last = {r["process"]: i for i, r in enumerate(logged) if "exit" not in r}
    assert all(i > last[r["process"]] for i, r in enumerate(logged) if "exit" in r)  # after all its work
    assert (out / "metrics.json").is_file()


def test_one_checkpoint_written_by_the_main_process(single, two):
    out, _, shards = two
    saved = [r for r in records(shards) if "saved" in r]
    assert {r["process"] for r in saved} == {0}
    single_saved = [r for r in records(single[2]) if "saved" in r]
    assert saved == single_saved  # best/ once (iteration 6), the state at the same iterations
    assert [r["iteration"] for r in saved if r["saved"] == "best"] == [6]
    assert sorted(p.name for p in out.iterdir()) == ["best", "metrics.json", "state"]


def test_final_weights_equal_a_single_process_run(single, two):
    reference, expected, _ = single
    out, _, _ = two
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"] == expected["history"] and metrics["best_iteration"] == expected["best_iteration"]
    assert metrics["iterations"] == ITERATIONS
    assert_weights_close(out, reference, TOLERANCE, skip=NO_SIGNAL)


def test_resume_under_two_processes_continues_each_share(single, backbone, toy_data, tmp_path, two):
    """A state saved mid-epoch (here by one process: the state does not depend on the process count) continued by
    two: each process skips what is done and trains its share of the rest, as the uninterrupted launch did, and the
    run ends at the single process's weights. (One process resuming its own state exactly: tests/test_resume.py.)"""
    reference, expected, _ = single
    out, shards = tmp_path / "resumed", tmp_path / "resumed.shards.jsonl"
    first = train_main(train_args(backbone, toy_data, out, *RUN, "--stop-after-iterations", "8"))  # mid-epoch 2
    assert first["iterations"] == 8
    launch(train_args(backbone, toy_data, out, *RUN, "--resume"), shards)
    uninterrupted = trained(two[2])
    assert trained(shards) == {k: v for k, v in uninterrupted.items() if k[1] >= 8}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_at_iteration"] == 8 and metrics["iterations"] == ITERATIONS
    assert metrics["history"] == expected["history"] and metrics["best_iteration"] == expected["best_iteration"]
    saved = [(r["process"], r["saved"], r["iteration"]) for r in records(shards) if "saved" in r]
    assert saved == [(0, "state", 9), (0, "state", 12)]  # iteration 12 validates worse than 6: no new best/
    assert_weights_close(out, reference, TOLERANCE, skip=NO_SIGNAL)


# Without a launch: the refusals, the layout the loader hands out, and the counterfactual draws of a share.

def test_refused_what_processes_cannot_do_as_one():
    from train.parallel import check_processes

    check_processes(Namespace(batch_size=15, in_batch_negatives=True), 1)  # one process: anything goes
    with pytest.raises(ValueError, match="--batch-size 15 .* multiple of 2"):
        check_processes(Namespace(batch_size=15, in_batch_negatives=False), 2)
    with pytest.raises(ValueError, match="--in-batch-negatives"):
        check_processes(Namespace(batch_size=16, in_batch_negatives=True), 2)


@pytest.mark.parametrize("processes", [1, 2, 3])
@pytest.mark.parametrize("length", [12, 7, 2, 1])
def test_each_process_gets_its_share_of_a_short_batch_and_the_weights_restore_the_mean(processes, length):
    from accelerate.data_loader import BatchSamplerShard

    from train.parallel import IterationBatches, own_share

    whole = random.Random(length).sample(range(100), length)
    sampler = IterationBatches(lambda: iter([whole]), 1, 12, processes)
    got = []
    for index in range(processes):
        split = sampler if processes == 1 else BatchSamplerShard(sampler, processes, index, split_batches=True)
        (places,) = list(split)
        assert len(places) == 12 // processes
        got.append(own_share(whole, places, processes, index))
    trained = [mine for mine, _, weight in got if weight]
    assert [e for mine in trained for e in mine] == whole  # the batch, in order, once
    for mine, before, weight in got:
        if weight:
            assert whole[len(before) : len(before) + len(mine)] == mine
            assert weight == pytest.approx(processes * len(mine) / length)
        else:  # an empty share trains the first example at weight 0
            assert mine == whole[:1] and before == []
    assert sum(weight for _, _, weight in got) == pytest.approx(processes)  # DDP's mean is the batch's mean


@pytest.mark.parametrize("sampling", ["uniform", "model"])
def test_a_share_draws_the_counterfactuals_the_whole_batch_would(lively_bert, toy_data, sampling):
    from cott.batching import TrainingBatcher

    model, examples = toy_model(lively_bert, toy_data)
    model.eval()
    batcher = TrainingBatcher(model, 48, sampling=sampling)
    batch = examples[:10]
    n = len(batch)

    def counterfactuals(out, k):  # the counterfactual rows' input ids, one row per example
        return out["input_ids"][2 * k : 3 * k]

    whole = batcher(batch, random.Random(7))
    for lo, hi in ((0, 5), (5, 10), (3, 4)):
        share = batcher(batch[lo:hi], random.Random(7), before=batch[:lo])
        k = hi - lo
        want = counterfactuals(whole, n)[lo:hi]
        got = counterfactuals(share, k)
        width = min(want.shape[1], got.shape[1])  # padding follows the batch's longest row
        assert torch.equal(got[:, :width], want[:, :width])
        assert not got[:, width:].any() and not want[:, width:].any()
