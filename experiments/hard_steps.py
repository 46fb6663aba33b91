"""CoNLL04 made harder for CoTT's step, to test the method where its step is hard to learn (issue 31).

    python -m experiments.hard_steps --data ../shared/data/conll04/derived_tacred_style --output runs/hard/noisy \
        --noise 0.5 --train-pairs 4000

Reads a TACRED-layout folder (``train``, ``valid``/``dev``, ``test`` ``.jsonl``) and writes the same layout with:

- ``--noise P``: each entity mention's type replaced, with probability P, by another type drawn uniformly (the same
  draw for a mention in every pair of its sentence, in every split): the step is hard to infer and loosely tied to
  the relation. The relation is left as it is.
- ``--train-pairs N``: the training split cut to whole sentences, drawn in a seeded order, until N pairs are kept.
- ``--longer K``: each sentence joined with the K sentences before it and the K after it in its split (the pair's
  spans shifted): long inputs whose entities sit in the middle.

Validation and test keep all their pairs. ``variant.json`` records the settings and the counts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

SPLITS = {"train": ("train",), "valid": ("valid", "dev", "val"), "test": ("test",)}


def read_split(folder: Path, names: tuple[str, ...]) -> list[dict]:
    """The rows of the first of ``names`` (``.jsonl``) present in ``folder``."""
    for name in names:
        path = folder / f"{name}.jsonl"
        if path.exists():
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise SystemExit(f"{folder}: none of {', '.join(n + '.jsonl' for n in names)}")


def sentence_of(row: dict) -> tuple:
    """Rows of one sentence share their tokens (an entity pair per row)."""
    return tuple(row["token"])


def draw(seed: int, *key) -> random.Random:
    """A random stream keyed by ``key``: the same mention gets the same draw in every pair."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def noisy_type(kind: str, types: list[str], p: float, seed: int, sentence: tuple, span: tuple[int, int]) -> str:
    """``kind``, or with probability ``p`` another of ``types``."""
    rng = draw(seed, sentence, span)
    if rng.random() >= p:
        return kind
    return rng.choice([t for t in types if t != kind])


def add_noise(rows: list[dict], types: list[str], p: float, seed: int) -> list[dict]:
    out = []
    for row in rows:
        s = sentence_of(row)
        out.append(row | {
            "subj_type": noisy_type(row["subj_type"], types, p, seed, s, (row["subj_start"], row["subj_end"])),
            "obj_type": noisy_type(row["obj_type"], types, p, seed, s, (row["obj_start"], row["obj_end"])),
        })
    return out


def cut_to_pairs(rows: list[dict], pairs: int, seed: int) -> list[dict]:
    """Whole sentences in a seeded order until ``pairs`` pairs are kept (in their original order)."""
    sentences = list(dict.fromkeys(sentence_of(r) for r in rows))
    random.Random(seed).shuffle(sentences)
    counts: dict[tuple, int] = {}
    for r in rows:
        counts[sentence_of(r)] = counts.get(sentence_of(r), 0) + 1
    kept, total = set(), 0
    for s in sentences:
        if total >= pairs:
            break
        kept.add(s)
        total += counts[s]
    return [r for r in rows if sentence_of(r) in kept]


def lengthen(rows: list[dict], k: int) -> list[dict]:
    """Each sentence between the ``k`` sentences before and after it (in the split's order, wrapping round)."""
    sentences = list(dict.fromkeys(sentence_of(r) for r in rows))
    index = {s: i for i, s in enumerate(sentences)}
    out = []
    for row in rows:
        i, n = index[sentence_of(row)], len(sentences)
        before = [t for j in range(i - k, i) for t in sentences[j % n]] if n > 1 else []
        after = [t for j in range(i + 1, i + 1 + k) for t in sentences[j % n]] if n > 1 else []
        shift = len(before)
        out.append(row | {"token": before + list(row["token"]) + after,
                          **{f: row[f] + shift for f in ("subj_start", "subj_end", "obj_start", "obj_end")}})
    return out


def build(data: Path, output: Path, noise: float = 0.0, train_pairs: int = 0, longer: int = 0, seed: int = 0) -> dict:
    """Write the variant of ``data`` to ``output``; return what ``variant.json`` records."""
    splits = {name: read_split(data, names) for name, names in SPLITS.items()}
    types = sorted({r[f] for r in splits["train"] for f in ("subj_type", "obj_type")})
    if train_pairs:
        splits["train"] = cut_to_pairs(splits["train"], train_pairs, seed)
    for name, rows in splits.items():
        if longer:
            rows = lengthen(rows, longer)
        if noise:
            rows = add_noise(rows, types, noise, seed)
        splits[name] = rows
    output.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (output / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    record = {"source": str(data), "noise": noise, "train_pairs": train_pairs, "longer": longer, "seed": seed,
              "pairs": {name: len(rows) for name, rows in splits.items()},
              "related": {name: sum(r["relation"] != "no_relation" for r in rows) for name, rows in splits.items()}}
    (output / "variant.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m experiments.hard_steps", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="TACRED-layout folder (CoNLL04)")
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--noise", type=float, default=0.0, help="share of entity mentions given another type")
    p.add_argument("--train-pairs", type=int, default=0, help="keep whole training sentences up to this many pairs")
    p.add_argument("--longer", type=int, default=0, help="join each sentence with K neighbours on each side")
    p.add_argument("--seed", type=int, default=0, help="the noise and the training sentences drawn")
    args = p.parse_args(argv)
    if not 0.0 <= args.noise <= 1.0:
        p.error("--noise is a share between 0 and 1")
    record = build(args.data, args.output, args.noise, args.train_pairs, args.longer, args.seed)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
