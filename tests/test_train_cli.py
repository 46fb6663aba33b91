"""python -m train from a user's side: the pre-flight report (--check), --max-length auto, and one-line errors."""
import json

import pytest

from cott.data import load_jsonl
from helpers import toy_model, train_args
from train import advice, preflight
from train.cli import main as train_main


def _without_max_length(args: list[str]) -> list[str]:
    i = args.index("--max-length")
    return args[:i] + args[i + 2:]


def test_check_prints_the_report_and_trains_nothing(tiny_bert, toy_data, tmp_path, capsys):
    out = tmp_path / "run"
    result = train_main(train_args(tiny_bert, toy_data, out, "--check", "--max-length", "16"))
    text = capsys.readouterr().out
    assert not out.exists() and result["epoch_seconds"] > 0
    rep = result["check"]
    assert rep["examples"] == {"train": 96, "val": 24, "test": 24} and rep["labels"] == 6 and rep["steps"] == 2
    assert rep["step_answer_pairs"] == 6 and rep["label_counts"]["cat"] > 0 and sum(rep["label_counts"].values()) == 96
    assert set(rep["lengths"]) == {"cott", "prompt", "finetune"}
    assert rep["lengths"]["cott"]["cut"] > rep["lengths"]["finetune"]["cut"]  # the step slot makes CoTT's longer
    assert "pre-flight: task jsonl, method cott" in text and "an epoch: about" in text
    assert "WARNING: --max-length 16 cuts" in text  # most prompts are longer than 16 tokens


def test_check_reads_the_seeded_training_sample_times_the_run_s_objective_and_needs_no_test_split(
        tiny_bert, toy_data, tmp_path, monkeypatch, capsys):
    """--max-train-examples and --seed pick the training sample the report counts; the epoch is timed on it with the
    run's batch size and objective (the step-following rows included) at the length --max-length auto chose, to the
    millisecond; a data folder without a test split is reported without one."""
    import shutil
    from collections import Counter

    from cott.data import sample

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val"):
        shutil.copy(toy_data / f"{split}.jsonl", data)
    timed, epoch_seconds = [], preflight.epoch_seconds
    monkeypatch.setattr(preflight, "epoch_seconds", lambda model, batcher, loss, train, batch_size: timed.append(
        (batcher, loss, list(train), batch_size)) or epoch_seconds(model, batcher, loss, train, batch_size))
    result = train_main(_without_max_length(train_args(
        tiny_bert, data, tmp_path / "run", "--check", "--max-train-examples", "30", "--seed", "1",
        "--step-following", "0.5", "--step-loss-weight", "0.5")))
    rep = result["check"]
    assert rep["max_length_asked"] == "auto" and "(auto: 99% of training prompts whole)" in capsys.readouterr().out
    picked = sample(load_jsonl(toy_data, "train"), 30, 1)
    assert rep["examples"] == {"train": 30, "val": 24}
    assert rep["label_counts"] == Counter(e.label for e in picked)
    (batcher, loss, train, batch_size), = timed
    assert [e.fields for e in train] == [e.fields for e in picked] and batch_size == 16
    assert batcher.allowed is not None and loss.step_weight == 0.5 and batcher.max_length == rep["max_length"]
    assert result["epoch_seconds"] == round(result["epoch_seconds"], 3) > 0


def test_report_names_labels_that_never_occur_in_training_and_rare_ones(tiny_bert, toy_data):
    model, train = toy_model(tiny_bert, toy_data)
    val = list(load_jsonl(toy_data, "val"))
    rare = type(val[0])(dict(val[0].fields), ("mineral",), "quartz")
    rep = preflight.report(type("T", (), {"name": "toy", "template": model.template.text,
                                          "prompt_template": "[T] It is [A].", "finetune_template": "[T]"})(),
                           "cott", model, {"train": list(train)[:30], "val": val + [rare]}, 48, 48)
    assert rep["unseen"]["val"] == {"labels": ["quartz"], "steps": ["mineral"]}
    warned = preflight.warnings(rep)
    assert any("val: 1 label(s) and 1 step(s) never occur" in w for w in warned)
    counts = rep["label_counts"]
    assert rep["few"] == sorted(k for k, n in counts.items() if n < preflight.FEW)


def test_auto_max_length_keeps_99_percent_of_prompts_whole_and_is_recorded(tiny_bert, toy_data, tmp_path):
    result = train_main(_without_max_length(train_args(tiny_bert, toy_data, tmp_path / "run", "--epochs", "1")))
    config = json.loads((tmp_path / "run" / "best" / "cott.json").read_text())
    # the run's advice follows its selected checkpoint's validation step accuracy, and is kept in metrics.json
    hard = config["metrics"]["val"]["step_accuracy"] < advice.HARD_STEP
    assert ("advice" in result) == hard == ("advice" in json.loads((tmp_path / "run" / "metrics.json").read_text()))
    model, train = toy_model(tiny_bert, toy_data)
    lengths = preflight.prompt_lengths(model, train)
    chosen = config["max_length"]
    assert config["training"]["max_length"] == "auto" and isinstance(chosen, int)
    assert sum(n <= chosen for n in lengths) >= 0.99 * len(lengths)
    assert chosen == preflight.MIN_LENGTH or sum(n <= chosen - 1 for n in lengths) < 0.99 * len(lengths)
    assert preflight.resolve_max_length(40, model, train) == 40
    assert preflight.resolve_max_length("auto", model, train) <= model.masked_lm().config.max_position_embeddings


def test_step_advice_speaks_only_below_the_hard_step_threshold():
    assert advice.step_advice({"step_accuracy": advice.HARD_STEP}) is None
    assert advice.step_advice({}) is None  # a baseline has no step
    said = advice.step_advice({"step_accuracy": advice.HARD_STEP - 0.01})
    assert said.startswith(f"the step was right for {advice.HARD_STEP - 0.01:.0%}") and "--method prompt" in said


@pytest.mark.parametrize("content, says", [
    ('{"text": "a cat", "step": "animal", "label": "cat"}\n{not json\n', "train.jsonl, line 2: invalid JSON"),
    ('{"text": "a cat", "label": "cat"}\n', "line 1: missing field 'step'"),
])
def test_data_errors_are_one_line_and_exit_status_2(tiny_bert, tmp_path, capsys, content, says):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val", "test"):
        (data / f"{split}.jsonl").write_text(content)
    with pytest.raises(SystemExit) as stop:
        train_main(train_args(tiny_bert, data, tmp_path / "run"))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("python -m train: error: ") and says in err[0]
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(Exception, match="line"):  # --debug keeps the exception and its traceback
        train_main(train_args(tiny_bert, data, tmp_path / "run", "--debug"))


def test_a_wrong_flag_or_missing_data_is_one_line_and_exit_status_2(tiny_bert, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        train_main(["--task", "jsonl", "--data", str(tmp_path), "--no-such-flag"])
    assert stop.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        train_main(train_args(tiny_bert, tmp_path / "nowhere", tmp_path / "run"))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "nowhere" in err[0]
