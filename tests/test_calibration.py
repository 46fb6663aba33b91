import json

import pytest
import torch

from cott import CheckpointError, get_task, load_checkpoint
from cott.data import load_jsonl
from cott.inference import reason
from experiments.calibration import calibration, fit_temperature, reliability, with_temperature
from experiments.calibration import main as calibration_main
from train.build import model_from_checkpoint
from train.cli import main as train_main
from train.evaluate import main as evaluate_main
from helpers import train_args


def test_fit_temperature_recovers_the_sharpening_of_an_over_confident_distribution():
    torch.manual_seed(0)
    logits = 2 * torch.randn(20000, 6)
    gold = torch.multinomial(logits.softmax(-1), 1).squeeze(1)  # calibrated at T = 1 by construction
    sharp = (3 * logits).softmax(-1)  # what an over-confident model would say
    t = fit_temperature(sharp, gold)
    assert t == pytest.approx(3, rel=0.1)
    assert torch.equal(with_temperature(sharp, t).argmax(-1), sharp.argmax(-1))
    assert fit_temperature(logits.softmax(-1), gold) == pytest.approx(1, rel=0.1)


def test_reliability_measures_the_gap_between_confidence_and_accuracy():
    correct = torch.tensor([True, True, True, False] * 25)
    ece, rows = reliability(torch.full((100,), 0.75), correct)
    assert ece == pytest.approx(0) and rows == [{"low": pytest.approx(0.7), "high": pytest.approx(0.8), "n": 100,
                                                 "confidence": 0.75, "accuracy": 0.75}]
    confidence = torch.cat([torch.full((50,), 0.95), torch.full((50,), 0.15)])
    ece, rows = reliability(confidence, torch.tensor([True, False] * 25 + [False] * 50))
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.15) and [r["n"] for r in rows] == [50, 50]


def test_null_offset_trades_relations_for_no_relation():
    labels = ["no_relation", "Kill"]
    p_answer = torch.tensor([[0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.8, 0.2]])
    data = {"p_steps": torch.tensor([[0.9, 0.1]] * 4), "gold_step": torch.zeros(4, dtype=torch.long),
            "p_answer": p_answer, "p_answer_step": p_answer, "gold": torch.tensor([1, 1, 0, 0])}
    by_offset = calibration(data, labels, "relation")["answer_by_null_offset"]
    assert by_offset["0"] == pytest.approx(0.5)  # Kill said twice, right once; one of two gold Kills found
    assert by_offset["0"] == calibration(data, labels, "relation")["raw"]["answer_by_beta"]["1"]
    assert by_offset["-2"] == pytest.approx(2 / 3)  # every pair Kill: precision 1/2, recall 1
    assert by_offset["4"] == 0  # every pair no_relation
    assert "answer_by_null_offset" not in calibration(data, ["A", "B"], "classification")



def test_calibration_cli_brackets_the_direct_and_the_rectified_answer(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    train_main(train_args(tiny_bert, toy_data, out))
    result = calibration_main(["--checkpoint", str(out / "best"), "--data", str(toy_data), "--plot", str(tmp_path / "r.png")])
    metrics = evaluate_main(["--checkpoint", str(out / "best"), "--data", str(toy_data), "--split", "val", "--top-k", "1"])
    raw = result["raw"]["answer_by_beta"]
    assert raw["1"] == pytest.approx(metrics["rectified"]["accuracy"])  # beta 1, raw p(Î|x): the paper's form
    assert raw["0"] == result["scaled"]["answer_by_beta"]["0"] == pytest.approx(metrics["direct"]["accuracy"])
    assert result["step_accuracy"] == pytest.approx(metrics["step_accuracy"])
    assert result["scaled"]["nll"] <= result["raw"]["nll"] + 1e-9
    assert sum(r["n"] for r in result["raw"]["reliability"]) == result["examples"] == 24
    assert (tmp_path / "r.png").stat().st_size > 0
    json.dumps(result)
    with pytest.raises(SystemExit):
        calibration_main(["--checkpoint", str(out / "best"), "--data", str(toy_data), "--split", "test"])


def test_write_stores_the_temperature_every_reading_of_the_step_then_uses(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    train_main(train_args(tiny_bert, toy_data, out))
    ckpt = out / "best"
    model, _ = load_checkpoint(ckpt)
    inputs = [e.fields for e in load_jsonl(toy_data, "test")]
    raw = reason(model, inputs, None, 48)["p_steps"]
    first = calibration_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--write"])
    config = json.loads((ckpt / "cott.json").read_text())
    t = config["step_temperature"]
    assert t == first["temperature"] and config["calibration"]["split"] == "val"
    assert config["calibration"]["command"].startswith("python -m experiments.calibration --checkpoint")
    calibrated, _ = load_checkpoint(ckpt)
    scaled = reason(calibrated, inputs, None, 48)["p_steps"]
    assert torch.allclose(scaled, with_temperature(raw, t), atol=1e-5)
    again = calibration_main(["--checkpoint", str(ckpt), "--data", str(toy_data)])  # refits from the raw p(I|x)
    assert again["temperature"] == t and again["stored_temperature"] == t
    continued, _ = model_from_checkpoint(str(ckpt), get_task("jsonl"), "cott", [], [])
    assert continued.step_temperature == 1.0  # new weights need their own calibration
    for bad in (0, -1.0, "2", None):
        config["step_temperature"] = bad
        (ckpt / "cott.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match="step_temperature"):
            load_checkpoint(ckpt)
