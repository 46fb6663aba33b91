"""Training-iteration time with length-grouped batches (``--group-by-length``) against random batches, side by side.

Same model, same examples: one epoch's batches are drawn both ways (transformers' length-grouped order, and a
plain random permutation), and the training iterations alternate between the two so machine noise hits both alike.
Prints the padded tokens per iteration and the mean iteration time of each order, and their ratio.

    python -m benchmarks.length_grouping --data ../shared/data/conll04/derived_tacred_style --iterations 8
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time


def main(argv=None) -> dict:
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from cott.batching import TrainingBatcher, prompt_lengths
    from cott.losses import LossConfig, cott_loss
    from cott.tasks import get_task, label_sets
    from train.build import build_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="conll04")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="minilm")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--iterations", "--steps", type=int, default=8, help="measured training iterations of each order")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    task = get_task(args.task)
    train = task.loader(args.data, "train")
    model = build_model(task, "cott", args.model, *label_sets(train))
    lengths = prompt_lengths(model, train, args.max_length)
    shuffle = torch.Generator().manual_seed(0)
    orders = {"random": torch.randperm(len(train), generator=shuffle).tolist(),
              "grouped": get_length_grouped_indices(lengths, args.batch_size, generator=shuffle)}
    bs = args.batch_size
    picks = random.Random(0).sample(range(len(train) // bs), args.iterations + 1)  # the same batches for both orders
    batcher = TrainingBatcher(model, args.max_length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = {name: [] for name in orders}
    padded = {name: [] for name in orders}
    model.train()
    for k, b in enumerate(picks):
        for name, order in orders.items():
            batch = batcher([train[i] for i in order[b * bs : (b + 1) * bs]], random.Random(b))
            start = time.perf_counter()
            loss, _ = cott_loss(model, batch, LossConfig())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if k:  # the first iteration of each warms up
                times[name].append(time.perf_counter() - start)
                padded[name].append(batch["input_ids"].numel())
    out = {name: {"iteration_seconds": round(statistics.mean(times[name]), 3),
                  "padded_tokens_per_iteration": round(statistics.mean(padded[name]))} for name in orders}
    out["random_over_grouped"] = round(out["random"]["iteration_seconds"] / out["grouped"]["iteration_seconds"], 2)
    out.update(iterations=args.iterations, batch_size=bs, max_length=args.max_length, threads=torch.get_num_threads())
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
