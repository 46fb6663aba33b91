"""experiments.hard_steps (CoNLL04 made hard for the step) and its results table."""
import json
import random

import pytest

from cott.data import load_tacred
from experiments import hard_steps, hard_steps_results

TYPES = ["Loc", "Org", "Other", "Peop"]


def _rows(sentences: int, seed: int = 0) -> list[dict]:
    """Sentences of 6-9 words with every ordered pair of their three mentions (one word each) as a row."""
    rng, rows = random.Random(seed), []
    for s in range(sentences):
        words = [f"w{s}_{i}" for i in range(rng.randint(6, 9))]
        spots = sorted(rng.sample(range(len(words)), 3))
        kinds = [rng.choice(TYPES) for _ in spots]
        for a in range(3):
            for b in range(3):
                if a != b:
                    rows.append({"id": f"s{s}-{a}-{b}", "token": words, "subj_start": spots[a], "subj_end": spots[a],
                                 "subj_type": kinds[a], "obj_start": spots[b], "obj_end": spots[b],
                                 "obj_type": kinds[b], "relation": "Work_For" if (a, b) == (0, 1) else "no_relation"})
    return rows


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "conll"
    folder.mkdir()
    for split, n in (("train", 60), ("dev", 20), ("test", 20)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(n, len(split))))
    return folder


def _mention_types(rows):
    """(sentence, span) -> every type the rows give that mention."""
    seen = {}
    for r in rows:
        for side in ("subj", "obj"):
            key = (tuple(r["token"]), r[f"{side}_start"], r[f"{side}_end"])
            seen.setdefault(key, set()).add(r[f"{side}_type"])
    return seen


def test_noise_changes_about_its_share_of_mentions_the_same_way_in_every_pair(source, tmp_path):
    record = hard_steps.build(source, tmp_path / "noisy", noise=0.5, seed=3)
    for split in ("train", "valid", "test"):
        before = _mention_types(hard_steps.read_split(source, hard_steps.SPLITS[split]))
        after = _mention_types(hard_steps.read_split(tmp_path / "noisy", (split,)))
        assert after.keys() == before.keys() and all(len(t) == 1 for t in after.values())  # one type per mention
        changed = sum(after[k] != before[k] for k in before) / len(before)
        assert 0.3 < changed < 0.7
        assert all(t <= set(TYPES) for t in after.values())
    assert record["pairs"]["valid"] == 20 * 6 and record["noise"] == 0.5
    rows = hard_steps.read_split(tmp_path / "noisy", ("train",))
    original = hard_steps.read_split(source, ("train",))
    assert [r["relation"] for r in rows] == [r["relation"] for r in original]  # answers untouched
    again = hard_steps.build(source, tmp_path / "again", noise=0.5, seed=3)
    assert (tmp_path / "again" / "train.jsonl").read_text() == (tmp_path / "noisy" / "train.jsonl").read_text()
    assert again["pairs"] == record["pairs"]


def test_fewer_pairs_keeps_whole_sentences_and_leaves_evaluation_whole(source, tmp_path):
    record = hard_steps.build(source, tmp_path / "few", train_pairs=100, seed=1)
    rows = hard_steps.read_split(tmp_path / "few", ("train",))
    per_sentence = {}
    for r in rows:
        per_sentence[tuple(r["token"])] = per_sentence.get(tuple(r["token"]), 0) + 1
    assert all(n == 6 for n in per_sentence.values())  # every pair of a kept sentence
    assert 100 <= len(rows) < 106 and record["pairs"] == {"train": len(rows), "valid": 120, "test": 120}
    other = hard_steps.build(source, tmp_path / "other", train_pairs=100, seed=2)
    assert other["pairs"]["train"] == len(rows)
    assert (tmp_path / "other" / "train.jsonl").read_text() != (tmp_path / "few" / "train.jsonl").read_text()


def test_longer_inputs_keep_each_mention_on_its_own_words(source, tmp_path):
    hard_steps.build(source, tmp_path / "long", longer=1)
    for split in ("train", "valid", "test"):
        before = hard_steps.read_split(source, hard_steps.SPLITS[split])
        after = hard_steps.read_split(tmp_path / "long", (split,))
        assert len(after) == len(before)
        for old, new in zip(before, after):
            assert len(new["token"]) > len(old["token"])
            for side in ("subj", "obj"):
                assert (new["token"][new[f"{side}_start"]: new[f"{side}_end"] + 1]
                        == old["token"][old[f"{side}_start"]: old[f"{side}_end"] + 1])
    loaded = load_tacred(tmp_path / "long", "test")  # the layout the training loader reads
    assert len(loaded) == 120


def _record(data, method, seed, val, test):
    modes = lambda f: {m: {"f1": f[i]} for i, m in enumerate(("direct", "step2", "rectified"))}  # noqa: E731
    return {"data": data, "method": method, "seed": seed, "val": modes(val), "test": modes(test)}


def test_results_pick_the_mode_on_validation_and_read_it_on_test():
    records = [_record("hard", "cott", 0, (0.2, 0.4, 0.3), (0.9, 0.1, 0.5)),
               _record("hard", "cott", 1, (0.5, 0.1, 0.3), (0.7, 0.6, 0.5)),
               _record("hard", "prompt", 0, (0.3, 0.3, 0.3), (0.4, 0.4, 0.4))]
    assert [hard_steps_results.picked_mode(r) for r in records[:2]] == ["step2", "direct"]
    line = next(row for row in hard_steps_results.table(records).splitlines() if row.startswith("| hard"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    headers = [h for h, *_ in hard_steps_results.COLUMNS]
    assert cells[1 + headers.index("same CoTT, mode picked on val")].startswith("40.0 ±")  # test 0.1 and 0.7
    assert cells[1 + headers.index("CoTT (rectified)")].startswith("50.0 ± 0.0 (2 seeds)")
    assert cells[1 + headers.index("prompt tuning")] == "40.0 (1 seed)"
    assert cells[1 + headers.index("fine-tuning")] == "–"
