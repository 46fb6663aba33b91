"""Greedy model soups: averaging, the greedy rule, and the soup checkpoint the CLI writes."""
import json

import pytest
import torch
from safetensors.torch import load_file

from cott import CoTTPipeline
from experiments.soup import average, greedy_soup
from experiments.soup import main as soup_main
from train.cli import main as train_main
from helpers import train_args


def test_average_is_the_elementwise_mean_and_keeps_integer_tensors():
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "n": torch.tensor([3])}
    b = {"w": torch.tensor([3.0, 6.0], dtype=torch.float16), "n": torch.tensor([5])}
    out = average([a, b])
    assert out["w"].dtype == torch.float16 and out["w"].tolist() == [2.0, 4.0] and out["n"].tolist() == [3]


def test_greedy_soup_adds_in_score_order_and_leaves_out_what_lowers_validation():
    scores = {"a": 0.70, "b": 0.75, "c": 0.72, "d": 0.60}
    soup_scores = {("b", "c"): 0.77, ("b", "c", "a"): 0.76, ("b", "c", "d"): 0.77}
    seen = []
    kept, history = greedy_soup(scores, lambda names: seen.append(tuple(names)) or soup_scores[tuple(names)])
    assert seen == [("b", "c"), ("b", "c", "a"), ("b", "c", "d")]  # best first, each tried on top of what is kept
    assert kept == ["b", "c", "d"]  # a lowered the score; d tied it, and a tie is kept
    assert [h["kept"] for h in history] == [True, True, False, True]


@pytest.fixture(scope="module")
def continuations(tiny_bert, toy_data, tmp_path_factory):
    """Two continuations of one parent (different seeds), stored as fp32 deltas with frozen embeddings."""
    root = tmp_path_factory.mktemp("soup")
    train_main(train_args(tiny_bert, toy_data, root / "parent", "--epochs", "1"))
    out = []
    for seed in ("1", "2"):
        train_main(train_args(tiny_bert, toy_data, root / f"child{seed}", "--epochs", "1", "--seed", seed,
                               "--init-from", str(root / "parent" / "best"), "--freeze-embeddings",
                               "--save-weights", "delta"))
        out.append(root / f"child{seed}" / "best")
    return root, out


def test_soup_cli_writes_a_loadable_average_that_records_its_ingredients(continuations, toy_data):
    root, (a, b) = continuations
    kept, score = soup_main(["--checkpoints", str(a), str(b), "--data", str(toy_data), "--output", str(root / "soup")])
    config = json.loads((root / "soup" / "cott.json").read_text())
    assert config["training"]["soup_of"] == kept and config["metrics"]["val"]["answer"]["accuracy"] == score
    assert {i["path"] for i in config["ingredients"]} == {str(a), str(b)}
    assert all(i["training"]["command"].startswith("python -m train") for i in config["ingredients"])
    soup = load_file(root / "soup" / "delta.safetensors")
    parts = [load_file(f"{k}/delta.safetensors") for k in kept]
    assert soup.keys() == parts[0].keys() and "bert.embeddings.word_embeddings.weight" not in soup
    for name, tensor in soup.items():
        assert torch.allclose(tensor, sum(p[name] for p in parts) / len(parts), atol=1e-6), name
    pipe = CoTTPipeline.from_pretrained(str(root / "soup"))
    assert pipe("a big red bus").answer and pipe.card()["ingredients"] == config["ingredients"]


def test_soup_cli_refuses_checkpoints_of_different_models(continuations, tiny_bert, toy_data):
    root, (a, b) = continuations
    with pytest.raises(SystemExit):  # the parent stores the whole model, the children deltas
        soup_main(["--checkpoints", str(a), str(root / "parent" / "best"), "--data", str(toy_data),
                   "--output", str(root / "bad")])
    with pytest.raises(SystemExit):
        soup_main(["--checkpoints", str(a), str(b), str(a), "--data", str(toy_data), "--output", str(root / "bad")])
    assert not (root / "bad").exists()
