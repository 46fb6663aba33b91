"""Training lowers the loss, checkpoints round-trip, bad checkpoints fail clearly, resume is exact."""
import json
import random

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertForMaskedLM

from cott import CheckpointError, CoTTPipeline, get_task, load_checkpoint, save_checkpoint
from cott.batching import TrainingBatcher
from cott.data import load_jsonl
from cott.inference import reason
from cott.losses import LossConfig, cott_loss
from cott.tasks import label_sets
from train.cli import main as train_main
from train.build import build_model
from helpers import train_args


def _model(backbone, data, method="cott"):
    examples = load_jsonl(data, "train")
    steps, answers = label_sets(examples)
    torch.manual_seed(0)
    return build_model(get_task("jsonl"), method, str(backbone), steps, answers), examples


@pytest.mark.parametrize("method", ["cott", "prompt", "finetune"])
def test_every_method_sees_the_entity_pair_of_a_relation(tiny_bert, method):
    """A baseline that reads only the sentence cannot tell its pairs apart (CoNLL04 has several per sentence)."""
    model = build_model(get_task("conll04"), method, str(tiny_bert), ["Peop", "Org"], ["Work_For", "no_relation"])
    assert {"marked", "subj", "obj"} <= model.template.fields() and model.template.main == "marked"


@pytest.mark.parametrize("backbone", ["tiny_bert", "tiny_roberta"])
@pytest.mark.parametrize("method", ["cott", "prompt", "finetune"])
def test_a_few_steps_lower_the_loss(request, toy_data, backbone, method):
    model, examples = _model(request.getfixturevalue(backbone), toy_data, method)
    batcher = TrainingBatcher(model, 48)
    batch = batcher(examples[:32], random.Random(0))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    losses = []
    for _ in range(30):
        loss, parts = cott_loss(model, batch, LossConfig())
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0]
    if method == "cott":
        assert set(parts) == {"L_I", "L_y1", "L_y2", "L_cc"}


def test_cott_batch_is_one_forward_of_three_encodings(tiny_bert, toy_data):
    model, examples = _model(tiny_bert, toy_data)
    batch = TrainingBatcher(model, 48)(examples[:5], random.Random(0))
    assert batch["input_ids"].shape[0] == 15
    no_cc = TrainingBatcher(model, 48, counterfactual=False)(examples[:5], random.Random(0))
    assert no_cc["input_ids"].shape[0] == 10
    # counterfactual rows carry a step different from the gold one
    tok = model.tokenizer
    for i, e in enumerate(examples[:5]):
        gold_text = tok.decode(batch["input_ids"][5 + i])
        cf_text = tok.decode(batch["input_ids"][10 + i])
        assert e.step[0] in gold_text and e.step[0] not in cf_text


@pytest.mark.parametrize("weights,dtype,tol", [("full", "float32", 1e-6), ("delta", "float32", 1e-6)])
def test_checkpoint_round_trip_gives_the_same_probabilities(tiny_bert, toy_data, tmp_path, weights, dtype, tol):
    model, examples = _model(tiny_bert, toy_data)
    model.eval()
    inputs = [e.fields for e in examples[:6]]
    before = reason(model, inputs, top_k=2)
    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(tiny_bert), "max_length": 48}
    save_checkpoint(model, tmp_path / "ckpt", meta, weights=weights, dtype=dtype)
    loaded, config = load_checkpoint(tmp_path / "ckpt")
    after = reason(loaded, inputs, top_k=2)
    for key in ("p_answer", "p_steps", "p_answer_step", "p_rectified", "p_marginal"):
        assert torch.allclose(before[key], after[key], atol=tol), key
    assert config.task == "jsonl" and config.answer_verbalizer["labels"] == model.answer.labels


def _saved(tiny_bert, toy_data, tmp_path):
    model, _ = _model(tiny_bert, toy_data)
    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(tiny_bert), "max_length": 48}
    return save_checkpoint(model, tmp_path / "ckpt", meta)


def test_bad_checkpoints_name_the_file_and_problem(tiny_bert, toy_data, tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")
    ckpt = _saved(tiny_bert, toy_data, tmp_path)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated or corrupt"):
        load_checkpoint(ckpt)
    weights.unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        load_checkpoint(ckpt)


def test_mismatched_and_malformed_config(tiny_bert, toy_data, tmp_path):
    ckpt = _saved(tiny_bert, toy_data, tmp_path)
    cfg_file = ckpt / "cott.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["proj_dim"] = 7
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="cott_heads.safetensors: does not match"):
        load_checkpoint(ckpt)
    cfg_file.write_text("{not json")
    with pytest.raises(CheckpointError, match="cott.json: not valid JSON"):
        load_checkpoint(ckpt)
    cfg_file.unlink()
    with pytest.raises(CheckpointError, match="cott.json: missing"):
        load_checkpoint(ckpt)


def test_checkpoint_holds_no_pickle(tiny_bert, toy_data, tmp_path):
    ckpt = _saved(tiny_bert, toy_data, tmp_path)
    assert not list(ckpt.glob("*.bin")) and not list(ckpt.glob("*.pt"))
    assert load_file(ckpt / "cott_heads.safetensors")


def _trained_weights(out):
    return load_file(out / "state" / "model.safetensors")


@pytest.mark.parametrize("order", [[], ["--group-by-length"]])
def test_resume_after_interruption_gives_the_same_weights(tiny_bert, toy_data, tmp_path, order):
    train_main(train_args(tiny_bert, toy_data, tmp_path / "straight", *order))
    train_main(train_args(tiny_bert, toy_data, tmp_path / "resumed", "--stop-after-steps", "4", *order))
    partial = json.loads((tmp_path / "resumed" / "state" / "state.json").read_text())
    assert partial["info"]["iteration"] == 4
    train_main(train_args(tiny_bert, toy_data, tmp_path / "resumed", "--resume", *order))
    a, b = _trained_weights(tmp_path / "straight"), _trained_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_resume_under_other_settings_or_from_a_corrupt_state_is_refused(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    train_main(train_args(tiny_bert, toy_data, out, "--stop-after-steps", "4"))
    with pytest.raises(ValueError, match=r"other settings \(--lr 0.001 -> 0.0001\)"):
        train_main(train_args(tiny_bert, toy_data, out, "--resume", "--lr", "1e-4", "--debug"))
    assert json.loads((out / "state" / "state.json").read_text())["info"]["iteration"] == 4  # the state is left as it was
    train_main(train_args(tiny_bert, toy_data, out, "--resume", "--eval-test"))  # reading test changes no weights
    assert json.loads((out / "state" / "state.json").read_text())["info"]["iteration"] == 12
    (out / "state" / "state.json").write_text("{truncated")
    with pytest.raises(ValueError, match="is not a training state"):
        train_main(train_args(tiny_bert, toy_data, out, "--resume", "--debug"))
    with pytest.raises(SystemExit) as stop:  # without --debug: one line and exit status 2
        train_main(train_args(tiny_bert, toy_data, out, "--resume"))
    assert stop.value.code == 2



def test_training_command_writes_checkpoint_metrics_and_test_scores(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    result = train_main(train_args(tiny_bert, toy_data, out, "--eval-test", "--lambda-cc", "0.5"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 12 and "test" in metrics
    config = json.loads((out / "best" / "cott.json").read_text())
    assert config["metrics"]["test"]["examples"] == 24 and config["training"]["lambda_cc"] == 0.5
    assert config["training"]["command"].startswith("python -m train")
    assert config["soft_verbalizer"] is True  # the default for prompt-based methods
    pipe = CoTTPipeline.from_pretrained(str(out / "best"))
    pred = pipe("i saw a cat today")
    assert pred.step in pipe.steps and 0 <= pred.step_prob <= 1
    assert abs(sum(pred.p_rectified) - 1) < 1e-4
    assert result["best_val"] == max(h["val"] for h in metrics["history"])


def test_lora_training_saves_a_plain_checkpoint(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "lora"
    train_main(train_args(tiny_bert, toy_data, out, "--lora-r", "4", "--epochs", "1"))
    assert (out / "best" / "model.safetensors").exists()
    pred = CoTTPipeline.from_pretrained(str(out / "best"), device="cpu")("a big red bus")
    assert pred.answer in pred.labels


def test_mlm_warmup_trains_only_the_head(tiny_bert, toy_data):
    from train.warmup import mlm_warmup

    model, examples = _model(tiny_bert, toy_data)
    encoder = {n: p.detach().clone() for n, p in model.masked_lm().base_model.named_parameters()}
    head = [p.detach().clone() for p in model.head_parameters()]
    losses = mlm_warmup(model, [e.fields["text"] for e in examples], steps=8, batch_size=16, lr=1e-2, progress=False)
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert all(torch.equal(encoder[n], p) for n, p in model.masked_lm().base_model.named_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(head, model.head_parameters()))


def test_step_oracle_reads_errors_by_step(tiny_bert, toy_data, tmp_path):
    from experiments.step_oracle import main as oracle_main
    out = tmp_path / "run"
    train_main(train_args(tiny_bert, toy_data, out))
    result = oracle_main(["--checkpoint", str(out / "best"), "--data", str(toy_data)])
    assert result["examples"] == 24 and 0 <= result["errors_with_a_wrong_step"] <= result["errors"] <= 24
    assert all(0 <= result[k] <= 1 for k in ("rectified", "direct", "gold_step_injected", "step_accuracy"))
    assert result["errors"] == round((1 - result["rectified"]) * 24)
    model, _ = load_checkpoint(out / "best")  # the oracle is Step II as inference runs it with the gold step forced
    test = load_jsonl(toy_data, "test")
    forced = reason(model, [e.fields for e in test], [model.step_phrase(tuple(e.step)) for e in test], 48)
    right = [model.answer.labels[p] == e.label for p, e in zip(forced["p_answer_step"].argmax(-1).tolist(), test)]
    assert result["gold_step_injected"] == pytest.approx(sum(right) / 24)


def test_soft_verbalizer_starts_at_the_label_words_trains_and_round_trips(tiny_bert, toy_data, tmp_path):
    examples = load_jsonl(toy_data, "train")
    steps, answers = label_sets(examples)
    models = []
    for soft in (False, True):
        torch.manual_seed(0)
        models.append(build_model(get_task("jsonl"), "cott", str(tiny_bert), steps, answers, soft_verbalizer=soft).eval())
    words, soft = models
    inputs = [e.fields for e in examples[:6]]
    keys = ("p_answer", "p_steps", "p_answer_step", "p_rectified")
    start, start_soft = reason(words, inputs), reason(soft, inputs)
    assert all(torch.allclose(start[k], start_soft[k], atol=1e-6) for k in keys)

    batch = TrainingBatcher(soft, 48)(examples[:16], random.Random(0))
    opt = torch.optim.AdamW([*soft.answer_soft.parameters(), *soft.step_soft.parameters()], lr=1e-2)
    soft.train()
    for _ in range(3):
        loss, _ = cott_loss(soft, batch, LossConfig())
        loss.backward()
        opt.step()
        opt.zero_grad()
    soft.eval()
    trained = reason(soft, inputs)
    assert not torch.allclose(trained["p_answer"], start["p_answer"], atol=1e-4)
    assert not torch.allclose(trained["p_steps"], start["p_steps"], atol=1e-4)

    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(tiny_bert), "max_length": 48}
    save_checkpoint(soft, tmp_path / "ckpt", meta, weights="delta")
    loaded, config = load_checkpoint(tmp_path / "ckpt")
    assert config.soft_verbalizer is True
    after = reason(loaded, inputs)
    assert all(torch.allclose(trained[k], after[k], atol=1e-6) for k in keys)


def test_delta_checkpoint_over_a_headless_backbone_loads_quietly_and_needs_its_head(tiny_bert, toy_data, tmp_path, caplog):
    """Over an encoder without an MLM head (MiniLM) the delta supplies the head: loading it prints no "newly
    initialized" report, and a delta without the head is refused rather than run with a random one."""
    headless = tmp_path / "headless"
    BertForMaskedLM.from_pretrained(tiny_bert).bert.save_pretrained(headless)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(headless)
    model, examples = _model(headless, toy_data)
    meta = {"task": "jsonl", "kind": "classification", "method": "cott", "backbone": str(headless), "max_length": 48}
    ckpt = save_checkpoint(model, tmp_path / "ckpt", meta, weights="delta")
    caplog.clear()  # building the model above reported its fresh head, as it should
    with caplog.at_level("WARNING", logger="transformers"):
        load_checkpoint(ckpt)
    assert "LOAD REPORT" not in caplog.text
    delta = load_file(ckpt / "delta.safetensors")
    save_file({k: v for k, v in delta.items() if not k.startswith("cls.predictions.transform")}, ckpt / "delta.safetensors")
    with pytest.raises(CheckpointError, match="lacks .*cls.predictions.transform.*incomplete"):
        load_checkpoint(ckpt)


def test_init_from_continues_a_checkpoint_and_records_its_history(tiny_bert, toy_data, tmp_path):
    train_main(train_args(tiny_bert, toy_data, tmp_path / "parent", "--epochs", "1"))
    parent = tmp_path / "parent" / "best"
    # learning rates 0: the continued model must be exactly the parent (no fresh head, no MLM warm-up)
    train_main(train_args(tiny_bert, toy_data, tmp_path / "child", "--epochs", "1", "--init-from", str(parent),
                           "--lr", "0", "--head-lr", "0", "--model", "unused-alias"))
    child = tmp_path / "child" / "best"
    a = CoTTPipeline.from_pretrained(str(parent))("a big red bus")
    b = CoTTPipeline.from_pretrained(str(child))("a big red bus")
    assert a.step == b.step and torch.allclose(torch.tensor(a.p_rectified), torch.tensor(b.p_rectified), atol=1e-5)
    config, parent_config = (json.loads((p / "cott.json").read_text()) for p in (child, parent))
    assert config["backbone"] == parent_config["backbone"] == str(tiny_bert)
    assert config["init_from"]["training"]["command"] == parent_config["training"]["command"]
    assert config["training"]["mlm_warmup_steps"] == 0 < parent_config["training"]["mlm_warmup_steps"]
    train_main(train_args(tiny_bert, toy_data, tmp_path / "grandchild", "--epochs", "1", "--init-from", str(child)))
    chain = json.loads((tmp_path / "grandchild" / "best" / "cott.json").read_text())["init_from"]
    assert chain["path"] == str(child) and chain["init_from"]["path"] == str(parent)
    card = CoTTPipeline.from_pretrained(str(tmp_path / "grandchild" / "best")).card()  # what the app's About tab shows
    assert card["init_from"]["init_from"]["path"] == str(parent)
    with pytest.raises(ValueError, match="cannot continue as 'jsonl' 'prompt'"):
        train_main(train_args(tiny_bert, toy_data, tmp_path / "bad", "--init-from", str(parent), "--method", "prompt",
                              "--debug"))
    # the verbalizers cannot change: the checkpoint's own settings are accepted, others refused, never ignored
    train_main(train_args(tiny_bert, toy_data, tmp_path / "same", "--epochs", "1", "--init-from", str(parent),
                           "--soft-verbalizer", "--pooling", "mean", "--stop-after-steps", "1"))
    for name, flag in (("--soft-verbalizer=True", ["--no-soft-verbalizer"]), ("--pooling='mean'", ["--pooling", "first"])):
        with pytest.raises(ValueError, match=f"trained with {name}"):
            train_main(train_args(tiny_bert, toy_data, tmp_path / "bad", "--init-from", str(parent), *flag, "--debug"))


@pytest.mark.parametrize("bad", ["0", "-5"])
def test_train_refuses_a_max_length_that_is_not_positive(tiny_bert, toy_data, tmp_path, bad, capsys):
    with pytest.raises(SystemExit):  # at the command line, before any model is built
        train_main(train_args(tiny_bert, toy_data, tmp_path / "run", "--max-length", bad))
    assert "--max-length: must be a positive number of tokens" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
