"""Resuming after a validation has run: the best score, the history and best/ are those of an uninterrupted run."""
import json

import pytest
import torch
from safetensors.torch import load_file

from train.cli import main as train_main
from helpers import train_args

# No MLM warm-up (fast); validation after each of the 2 epochs of 6 steps, at steps 6 and 12. On the toy data the
# first validation scores best, so a resumed run that forgot its best score would overwrite best/ at step 12.
FAST = ("--mlm-warmup-steps", "0")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    return value


def _best(out):
    """best/'s cott.json without its timings and training flags (which name the output folder and the stop), and weights."""
    config = json.loads((out / "best" / "cott.json").read_text())
    config.pop("training")
    return _without_timings(config), load_file(out / "best" / "model.safetensors")


@pytest.fixture(scope="module")
def straight(tiny_bert, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    result = train_main(train_args(tiny_bert, toy_data, out, *FAST))
    history = result["history"]
    assert [h["iteration"] for h in history] == [6, 12]
    assert result["best_iteration"] == 6 and history[0]["val"] > history[1]["val"]  # a forgotten best would show
    return out, result


@pytest.mark.parametrize("stop", [6, 8])
def test_resume_after_a_validation_keeps_best_score_history_and_best_checkpoint(tiny_bert, toy_data, tmp_path, straight, stop):
    reference, expected = straight
    out = tmp_path / "resumed"
    flag = "--stop-after-iterations" if stop == 6 else "--stop-after-steps"  # the old name of the flag still works
    first = train_main(train_args(tiny_bert, toy_data, out, *FAST, flag, str(stop)))
    assert first["iterations"] == stop and [h["iteration"] for h in first["history"]] == [6]  # stopped after one validation
    if stop == 8:  # a state saved before the counter was named "iteration" resumes too
        state = out / "state" / "state.json"
        meta = json.loads(state.read_text())
        info = meta["info"]
        meta["info"] = {"step": info.pop("iteration"), "best_step": info.pop("best_iteration"),
                        "history": [{"step": h["iteration"], "val": h["val"]} for h in info.pop("history")], **info}
        state.write_text(json.dumps(meta))
    result = train_main(train_args(tiny_bert, toy_data, out, *FAST, "--resume"))
    assert result["resumed_at_iteration"] == stop and result["iterations"] == 12
    for key in ("best_val", "best_iteration", "history"):
        assert result[key] == expected[key], key
    assert json.loads((out / "metrics.json").read_text())["history"] == expected["history"]
    config, weights = _best(out)
    want_config, want_weights = _best(reference)
    assert config == want_config  # best/ is iteration 6's, with its validation metrics
    assert weights.keys() == want_weights.keys()
    for name in weights:
        assert torch.allclose(weights[name], want_weights[name], atol=1e-6), name
    final, want_final = load_file(out / "state" / "model.safetensors"), load_file(reference / "state" / "model.safetensors")
    assert all(torch.allclose(final[n], want_final[n], atol=1e-6) for n in want_final)
