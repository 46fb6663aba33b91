"""train.evaluate and the evaluator on trained tiny checkpoints: max length, slices and records, order-free scoring."""
import json

import pytest

from cott import load_checkpoint, save_checkpoint
from cott.data import load_jsonl
from cott.evaluation import evaluate
from cott.inference import reason
from experiments.prompt_lengths import main as prompt_lengths_main
from helpers import toy_model, train_args
from train.cli import main as train_main
from train.evaluate import main as evaluate_main


def _saved(tiny_bert, toy_data, tmp_path):
    model, _ = toy_model(tiny_bert, toy_data)
    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(tiny_bert), "max_length": 48}
    return save_checkpoint(model, tmp_path / "ckpt", meta)




def test_evaluate_cli_reads_a_checkpoint_at_its_own_or_a_given_max_length(tiny_bert, toy_data, tmp_path):
    ckpt = _saved(tiny_bert, toy_data, tmp_path)  # trained at max length 48
    own = evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--output", str(tmp_path / "own.json")])
    short = evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", "16",
                           "--output", str(tmp_path / "short.json")])
    assert own["max_length"] == 48 and short["max_length"] == 16
    assert json.loads((tmp_path / "short.json").read_text())["max_length"] == 16
    assert own["examples"] == short["examples"] == 24
    with pytest.raises(ValueError, match="max_length=12 is too short"):  # the given length reaches the prompts
        evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", "12", "--debug"])
    with pytest.raises(SystemExit) as stop:  # without --debug: one line and exit status 2
        evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", "12"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit):  # argparse error, not a silent fall-back to the default
        evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", "0"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "test.jsonl").write_text("")
    with pytest.raises(SystemExit):  # a clear argparse error, not a KeyError from the metrics
        evaluate_main(["--checkpoint", str(ckpt), "--data", str(empty)])


def test_prompt_lengths_counts_the_prompts_a_max_length_cuts(tiny_bert, toy_data, tmp_path):
    ckpt = _saved(tiny_bert, toy_data, tmp_path)
    own = prompt_lengths_main(["--checkpoint", str(ckpt), "--data", str(toy_data)])
    assert own["examples"] == 24 and own["max_length"] == 48 and own["cut"] == 0.0
    tight = prompt_lengths_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", str(own["median_tokens"])])
    assert 0.0 < tight["cut"] < 1.0  # the longer half is cut
    with pytest.raises(SystemExit):  # argparse error, not a silent fall-back to the checkpoint's length
        prompt_lengths_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--max-length", "0"])


def test_evaluate_cli_writes_a_slice_or_a_record_beside_the_full_reading(tiny_bert, toy_data, tmp_path):
    ckpt = _saved(tiny_bert, toy_data, tmp_path)
    full = evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--split", "test"])
    evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--split", "test", "--max-examples", "8"])
    evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--split", "test", "--max-examples", "8",
                   "--record", "regression"])
    assert json.loads((ckpt / "metrics_test.json").read_text())["examples"] == full["examples"] == 24
    assert json.loads((ckpt / "metrics_test_8.json").read_text())["examples"] == 8
    assert json.loads((ckpt / "metrics_regression.json").read_text())["examples"] == 8
    assert json.loads((ckpt / "cott.json").read_text())["metrics"]["regression"]["examples"] == 8


def test_evaluate_scores_each_example_against_its_own_gold_whatever_the_batching(tiny_bert, toy_data, tmp_path):
    train_main(train_args(tiny_bert, toy_data, tmp_path / "run", "--epochs", "8"))
    model, config = load_checkpoint(tmp_path / "run" / "best")
    examples = load_jsonl(toy_data, "test")
    assert len({len(e.fields["text"]) for e in examples}) > 1  # evaluate batches them by length: a new order
    res = evaluate(model, examples, "classification", "rectified", 48, batch_size=5, top_k=1, progress=False)
    one = [reason(model, [e.fields], None, 48) for e in examples]  # one at a time, in the given order
    right = [r["p_rectified"].argmax(-1).item() == model.answer.index(e.label) for r, e in zip(one, examples)]
    steps = [model.known_steps()[r["step_hat"].item()] == tuple(e.step) for r, e in zip(one, examples)]
    assert 0 < sum(right) < len(examples)  # neither all right nor all wrong: a misaligned gold would show
    assert res["rectified"]["accuracy"] == pytest.approx(sum(right) / len(examples))
    assert res["step_accuracy"] == pytest.approx(sum(steps) / len(examples))
