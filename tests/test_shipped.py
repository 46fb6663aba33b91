"""The shipped checkpoints: hand-written checks, and a regression guard on a fixed slice of the real test sets."""
import json
from pathlib import Path

import pytest

from cott import CoTTPipeline, get_task
from cott.checkpoint import load_checkpoint
from cott.data import sample
from cott.evaluation import evaluate, headline, known_examples
from helpers import ROOT, needs_data

ASSETS = ROOT / "assets"
SHIPPED = {"clinc150": ("clinc150",), "clinc150-following": ("clinc150",), "conll04": ("conll04", "derived_tacred_style")}
CHECKS = json.loads((ASSETS / "checks.json").read_text())


def _checkpoint(name) -> Path:
    path = ASSETS / name
    if not (path / "cott.json").exists():
        pytest.skip(f"no shipped checkpoint at {path}")
    return path


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_is_small_and_self_describing(name):
    path = _checkpoint(name)
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size <= 25 * 2**20, f"{path} is {size / 2**20:.1f} MiB"
    config = json.loads((path / "cott.json").read_text())
    assert config["backbone"] == "minilm"
    assert config["training"]["command"].startswith(("python -m train", "python -m experiments.soup"))
    for ingredient in config.get("ingredients", []):  # a weight average names what trained each of its parts
        assert ingredient["training"]["command"].startswith("python -m train")
    assert "regression" in config["metrics"] and "test" in config["metrics"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_hand_written_examples(name):
    pipe = CoTTPipeline.from_pretrained(str(_checkpoint(name)), device="cpu")
    checks = CHECKS[pipe.config.task]
    preds = pipe([c["text"] for c in checks])
    for c, p in zip(checks, preds):
        assert (p.step, p.answer) == (c["step"], c["answer"]), c["text"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_no_regression_on_the_test_slice(name):
    path = _checkpoint(name)
    data = needs_data(*SHIPPED[name])
    model, config = load_checkpoint(path, "cpu")
    recorded = config.metrics["regression"]
    task = get_task(config.task)
    examples = sample(known_examples(model, task.loader(data, "test"), "test"), recorded["examples"])
    assert len(examples) >= 500
    result = evaluate(model, examples, task.kind, config.answer_mode, config.max_length, 64, top_k=1,
                      hierarchy=config.hierarchy, progress=False)
    assert headline(result, task.kind) >= headline(recorded, task.kind) - 0.01


def test_the_step_following_checkpoint_answers_within_an_injected_wrong_step():
    """The hand-written texts under every other domain: the step-following model's answer moves into that domain
    (measured 53 of 54; today's objective: 17 of 54), so a person who edits the step sees the answer move."""
    pipe = CoTTPipeline.from_pretrained(str(_checkpoint("clinc150-following")), device="cpu")
    pairs = [(c["text"], s) for c in CHECKS["clinc150"] for s in pipe.steps if s != c["step"]]
    preds = pipe([t for t, _ in pairs], step=[s for _, s in pairs])
    within = sum(p.answer in pipe.step_answers[s] for p, (_, s) in zip(preds, pairs))
    assert within >= 0.9 * len(pairs), f"{within} of {len(pairs)}"


def test_a_known_steps_words_are_matched_whatever_their_spaces_and_case():
    """ "Credit   Cards" is the known step credit_cards in the library as in the Experiment tab, not free text."""
    from cott_demo.experiment import resolve_step

    pipe = CoTTPipeline.from_pretrained(str(_checkpoint("clinc150")), device="cpu")
    pred = pipe("how do i raise my credit limit", step="Credit   Cards")
    assert pred.step == "credit_cards" and pred.step_prob is not None
    assert resolve_step(pipe, "Credit   Cards") == "credit_cards"
