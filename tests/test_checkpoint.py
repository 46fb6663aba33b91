"""A trained model saved (full, delta, delta in float16 or bfloat16, LoRA merged), reloaded, answers as in memory."""
import json
import random
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM

from cott import CheckpointError, load_checkpoint, save_checkpoint
from cott.checkpoint import command_line, training_meta, update_config
from cott.config import CheckpointConfig
from cott.batching import TrainingBatcher
from cott.data import load_jsonl
from cott.inference import reason
from cott.losses import LossConfig, cott_loss
from helpers import toy_meta, toy_model, typed_config

KEYS = ("p_answer", "p_steps", "p_answer_step", "p_rectified", "p_marginal")
# How far a reloaded model's probabilities may be from the in-memory model's: float32 is exact up to the order of
# float operations; float16 and bfloat16 round every stored weight (measured: 1.5e-5 and 2e-4 here, while
# training moved the probabilities by 0.1).
TOLERANCE = {"float32": 1e-6, "float16": 1e-4, "bfloat16": 1e-3}
WEIGHT_RTOL = {"float32": 0.0, "float16": 2**-11, "bfloat16": 2**-8}  # a stored weight's rounding, relative


def _train(model, examples, steps=6, lr=5e-3):
    """A few optimisation steps of the full CoTT loss: enough to move every probability away from the backbone's."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    batcher = TrainingBatcher(model, 48)
    model.train()
    for step in range(steps):
        batch = batcher(examples[16 * step : 16 * (step + 1)], random.Random(step))
        loss, _ = cott_loss(model, batch, LossConfig())
        loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


def _differ(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in KEYS)


@pytest.fixture(scope="module")
def inputs(toy_data):
    return [e.fields for e in load_jsonl(toy_data, "test")[:8]]


@pytest.fixture(scope="module")
def trained(tiny_bert, toy_data, inputs):
    """A model trained a few steps with frozen word embeddings (as compact checkpoints are), a calibrated step
    temperature, and what the untrained model said."""
    model, examples = toy_model(tiny_bert, toy_data)
    untrained = reason(model.eval(), inputs, top_k=2)
    model.mlm.get_input_embeddings().weight.requires_grad_(False)
    _train(model, examples)
    model.step_temperature = 1.7
    return model, untrained


@pytest.mark.parametrize("weights,dtype", [("full", "float32"), ("delta", "float32"), ("delta", "float16"),
                                           ("delta", "bfloat16")])
def test_trained_model_round_trips(trained, inputs, tiny_bert, tmp_path, weights, dtype):
    model, untrained = trained
    before = reason(model, inputs, top_k=2)
    tol = TOLERANCE[dtype]
    assert _differ(before, untrained) > 20 * tol  # training moved the answers: the backbone's cannot pass for them
    save_checkpoint(model, tmp_path / "ckpt", toy_meta(tiny_bert), weights=weights, dtype=dtype)
    loaded, config = load_checkpoint(tmp_path / "ckpt")
    assert config.weights == weights and config.weights_dtype == dtype
    assert loaded.step_temperature == 1.7
    after = reason(loaded, inputs, top_k=2)
    for key in KEYS:
        assert torch.allclose(before[key], after[key], atol=tol), (key, (before[key] - after[key]).abs().max().item())
    assert torch.equal(before["step_hat"], after["step_hat"])
    state, restored = model.state_dict(), loaded.state_dict()
    assert state.keys() == restored.keys()  # every head too (the projection g is not read by inference)
    for name, tensor in state.items():
        assert torch.allclose(tensor, restored[name], atol=1e-6, rtol=WEIGHT_RTOL[dtype]), name


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_delta_stores_only_the_trained_tensors_in_the_asked_dtype(trained, tiny_bert, tmp_path, dtype):
    model, _ = trained
    save_checkpoint(model, tmp_path / "ckpt", toy_meta(tiny_bert), weights="delta", dtype=dtype)
    delta = load_file(tmp_path / "ckpt" / "delta.safetensors")
    trained_names = {n for n, p in model.mlm.named_parameters() if p.requires_grad}
    assert delta.keys() == trained_names and "bert.embeddings.word_embeddings.weight" not in delta
    assert {t.dtype for t in delta.values()} == {getattr(torch, dtype)}
    assert not (tmp_path / "ckpt" / "model.safetensors").exists()
    heads = load_file(tmp_path / "ckpt" / "cott_heads.safetensors")
    assert {k.split(".")[0] for k in heads} == {"projection", "answer_soft", "step_soft"}


def test_lora_model_round_trips_merged(tiny_bert, toy_data, inputs, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, examples = toy_model(tiny_bert, toy_data)
    model.mlm = get_peft_model(model.mlm, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    for param in model.head_parameters():  # as training does: the MLM head trains with the adapters
        param.requires_grad_(True)
    _train(model, examples, lr=2e-2)
    before = reason(model, inputs, top_k=2)
    with model.mlm.disable_adapter():
        without_adapters = reason(model, inputs, top_k=2)
    assert _differ(before, without_adapters) > 20 * TOLERANCE["float32"]  # the adapters matter
    save_checkpoint(model, tmp_path / "ckpt", toy_meta(tiny_bert), weights="full")
    saved = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert not any("lora" in k for k in saved)  # plain merged weights, loadable without peft
    assert any("lora" in n for n, _ in model.mlm.named_parameters())  # merged on a copy: the model keeps its adapters
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    after = reason(loaded, inputs, top_k=2)
    for key in KEYS:
        assert torch.allclose(before[key], after[key], atol=TOLERANCE["float32"]), key
    assert torch.allclose(reason(model, inputs, top_k=2)["p_rectified"], before["p_rectified"])  # saving left the model as it was


# ---- what a checkpoint records, and every way a bad one is refused --------------------------------------------


@pytest.fixture
def saved(tiny_bert, toy_data, tmp_path):
    """An untrained toy model saved as a full checkpoint, and a delta one (each test may break its copy)."""
    model, _ = toy_model(tiny_bert, toy_data, soft_verbalizer=False)
    full = save_checkpoint(model, tmp_path / "full", toy_meta(tiny_bert, metrics={"val": {"accuracy": 0.5}}))
    delta = save_checkpoint(model, tmp_path / "delta", toy_meta(tiny_bert), weights="delta")
    return model, full, delta


def _config(path):
    return json.loads((path / "cott.json").read_text())


def _refused(path, message):
    """load_checkpoint raises CheckpointError with exactly ``message``."""
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == message


def test_config_records_the_model_and_the_meta(saved, tiny_bert):
    model, full, delta = saved
    config = _config(full)
    assert config["format"] == "cott-checkpoint" and config["version"] == 1
    assert config["task"] == "jsonl" and config["backbone"] == str(tiny_bert) and config["metrics"] == {"val": {"accuracy": 0.5}}
    assert config["template"] == model.template.text and config["answer_head"] == "verbalizer"
    assert config["answer_verbalizer"] == model.answer.to_dict() and config["step_verbalizer"] == model.step.to_dict()
    assert config["proj_dim"] == 128 and config["soft_verbalizer"] is False and config["step_temperature"] == 1.0
    assert config["weights"] == "full" and config["weights_dtype"] == "float32"
    assert (_config(delta)["weights"], _config(delta)["weights_dtype"]) == ("delta", "float32")
    assert sorted(p.name for p in full.iterdir() if not p.name.startswith("tokenizer") and p.suffix != ".txt") == [
        "config.json", "cott.json", "cott_heads.safetensors", "model.safetensors"]
    assert not list(full.parent.glob(".full.*"))  # no temporary folder left behind
    save_checkpoint(model, full, toy_meta(tiny_bert, description="für"))
    assert "für" in (full / "cott.json").read_text(encoding="utf-8")  # written as text, not \\u escapes


def test_saving_over_a_checkpoint_replaces_it(saved, tiny_bert):
    model, full, _ = saved
    (full / "stale.txt").write_text("old")
    save_checkpoint(model, full, toy_meta(tiny_bert), weights="delta")
    assert not (full / "stale.txt").exists() and not (full / "model.safetensors").exists()
    assert _config(full)["weights"] == "delta"
    with pytest.raises(ValueError, match=r"^weights must be 'full' or 'delta', not 'half'$"):
        save_checkpoint(model, full, toy_meta(tiny_bert), weights="half")
    assert _config(full)["weights"] == "delta"  # a refused save leaves the checkpoint as it was


def test_linear_head_checkpoint_round_trips(tiny_bert, toy_data, tmp_path, inputs):
    model, _ = toy_model(tiny_bert, toy_data, method="finetune")
    with torch.no_grad():
        model.classifier.bias.copy_(torch.arange(6.0) / 3)
    path = save_checkpoint(model, tmp_path / "ft", toy_meta(tiny_bert, method="finetune"))
    loaded, config = load_checkpoint(path)
    assert config.answer_head == "linear" and config.step_verbalizer is None and loaded.step is None
    assert torch.equal(loaded.classifier.bias, model.classifier.bias)
    assert torch.allclose(reason(loaded, inputs)["p_answer"], reason(model.eval(), inputs)["p_answer"], atol=1e-6)


def test_bad_configs_are_refused_with_the_file_and_the_problem(saved, tmp_path):
    _, full, _ = saved
    file = full / "cott.json"
    _refused(tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: not a checkpoint directory (it does not exist or is a file)")
    good = file.read_text()
    for config, message in (
        ({"format": "other"}, f'{file}: not a CoTT checkpoint config (no "format": "cott-checkpoint")'),
        ([1, 2], f'{file}: not a CoTT checkpoint config (no "format": "cott-checkpoint")'),
        (json.loads(good) | {"version": 2}, f"{file}: format version 2 is newer than this library (1)"),
    ):
        file.write_text(json.dumps(config))
        _refused(full, message)
    for key in ("template", "answer_verbalizer", "answer_head", "weights", "backbone"):
        file.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != key}))
        _refused(full, f"{file}: missing key {key!r}")
    file.write_text(json.dumps(json.loads(good) | {"weights": "half"}))
    _refused(full, f"{file}: unknown weights kind 'half'")
    file.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != "version"}))
    assert load_checkpoint(full)[1].task == "jsonl"  # a config without a version is version 0
    for bad in (0, -1.0, "2", True, None, float("inf")):
        file.write_text(json.dumps(json.loads(good) | {"step_temperature": bad}))
        _refused(full, f"{file}: step_temperature must be a positive number, not {bad!r}")
    file.write_text(json.dumps(json.loads(good) | {"step_temperature": 2}))
    assert load_checkpoint(full)[0].step_temperature == 2.0
    file.write_bytes(b"\xff\xfe{")
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(file))}: not valid JSON \("):
        load_checkpoint(full)
    file.unlink()
    _refused(full, f"{file}: missing; {full} is not a CoTT checkpoint")


def test_bad_weights_are_refused_with_the_file_and_the_problem(saved, tiny_bert):
    _, full, delta = saved
    weights = full / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:100])
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(weights))}: unreadable safetensors file, truncated or corrupt \("):
        load_checkpoint(full)
    weights.unlink()
    _refused(full, f"{weights}: missing (the checkpoint's masked LM)")
    heads = delta / "cott_heads.safetensors"
    heads.unlink()
    _refused(delta, f"{heads}: missing")
    file = delta / "delta.safetensors"
    tensors = load_file(file)
    save_file(tensors | {"bert.extra.weight": torch.zeros(2)}, file)
    _refused(delta, f"{file}: tensor 'bert.extra.weight' is not in the backbone {str(tiny_bert)!r}")
    name = "bert.encoder.layer.0.output.dense.bias"
    save_file(tensors | {name: torch.zeros(5)}, file)
    _refused(delta, f"{file}: tensor {name!r} has shape (5,), the backbone has (32,)")
    for f in delta.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
            f.unlink()
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(delta))}: tokenizer files missing or unreadable \("):
        load_checkpoint(delta)


def test_a_delta_changes_only_its_own_tensors_of_the_backbone(saved, tiny_bert):
    model, _, delta = saved
    file = delta / "delta.safetensors"
    name = "bert.encoder.layer.1.output.dense.bias"
    save_file({name: torch.full((32,), 0.25)}, file)  # a delta of one tensor (the head comes with the backbone)
    loaded, _ = load_checkpoint(delta)
    backbone = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    for n, p in loaded.mlm.named_parameters():
        want = torch.full((32,), 0.25) if n == name else dict(backbone.named_parameters())[n]
        assert torch.equal(p, want), n
    assert loaded.mlm.training is False and next(loaded.parameters()).device.type == "cpu"


def test_training_meta_records_the_task_training_and_the_chain_of_parents():
    from cott import get_task

    task = get_task("jsonl")
    meta = training_meta(task, "cott", "rectified", "minilm", 64, {"lr": 1e-3})
    assert meta == {"task": "jsonl", "kind": task.kind, "method": "cott", "answer_mode": "rectified", "backbone": "minilm",
                    "max_length": 64, "description": task.description, "training": {"lr": 1e-3}}
    parent = typed_config(training={"lr": 5e-5}, metrics={"val": {"accuracy": 0.9}}, init_from={"path": "grandparent"})
    full = training_meta(task, "cott", "step2", "minilm", 64, {}, hierarchy={"cat": "animal"}, parent=("runs/p", parent),
                         step_answers={"animal": ["cat"]})
    assert full["hierarchy"] == {"cat": "animal"} and full["step_answers"] == {"animal": ["cat"]}
    assert full["init_from"] == {"path": "runs/p", "training": {"lr": 5e-5}, "val": {"accuracy": 0.9},
                                 "init_from": {"path": "grandparent"}}
    first = training_meta(task, "cott", "step2", "minilm", 64, {}, parent=("runs/p", typed_config()), step_answers={})
    assert first["init_from"] == {"path": "runs/p", "training": {}, "val": None} and "step_answers" not in first


def test_update_config_adds_readings_and_changes_keys_in_place(saved):
    _, full, _ = saved
    got = update_config(full, metrics={"test": {"accuracy": 0.7}}, step_temperature=1.5)
    on_disk = _config(full)
    assert got == CheckpointConfig.from_json(on_disk) and got.step_temperature == 1.5 and on_disk["metrics"] == {"val": {"accuracy": 0.5}, "test": {"accuracy": 0.7}}
    assert on_disk["step_temperature"] == 1.5 and on_disk["task"] == "jsonl"
    update_config(full, metrics={"val": {"accuracy": 0.6}})
    assert _config(full)["metrics"] == {"val": {"accuracy": 0.6}, "test": {"accuracy": 0.7}}
    update_config(full, metrics=None, note="ü")
    assert _config(full)["note"] == "ü" and "ü" in (full / "cott.json").read_text(encoding="utf-8")
    assert (full / "cott.json").read_text().startswith('{\n  "format": ')  # indented by 2, for people to read
    (full / "cott.json").write_text(json.dumps({k: v for k, v in _config(full).items() if k != "metrics"}))
    assert update_config(full, metrics={"test": {"f1": 0.1}}).metrics == {"test": {"f1": 0.1}}  # the first reading
    assert sorted(p.name for p in full.glob(".*")) == []  # no temporary file left behind
    with pytest.raises(CheckpointError):
        update_config(full.parent / "nowhere", note="x")


def test_command_line_quotes_what_the_shell_would_need(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/path/to/train/__main__.py", "--task", "jsonl", "--note", "a b"])
    assert command_line("train") == "python -m train --task jsonl --note 'a b'"  # this process's own arguments
    assert command_line("train", ["--data", "my data", "--lr", "1e-3"]) == "python -m train --data 'my data' --lr 1e-3"
    assert command_line("train.evaluate", []) == "python -m train.evaluate"


def test_a_config_from_before_optional_keys_loads_with_their_defaults(saved, inputs):
    """Checkpoints written before proj_dim, soft_verbalizer and step_temperature were recorded still load."""
    model, full, _ = saved
    file = full / "cott.json"
    file.write_text(json.dumps({k: v for k, v in _config(full).items()
                                if k not in ("proj_dim", "soft_verbalizer", "step_temperature", "version")}))
    loaded, _ = load_checkpoint(full)
    assert loaded.projection[-1].out_features == 128 and not loaded.soft_verbalizer and loaded.step_temperature == 1.0
    assert torch.allclose(reason(loaded, inputs)["p_steps"], reason(model.eval(), inputs)["p_steps"], atol=1e-6)


def test_heads_that_do_not_match_the_config_are_refused_with_the_first_line_of_the_reason(saved):
    _, full, _ = saved
    file = full / "cott.json"
    file.write_text(json.dumps(_config(full) | {"proj_dim": 7}))
    _refused(full, f"{full / 'cott_heads.safetensors'}: does not match cott.json (Error(s) in loading state_dict for "
                   "Sequential: ...)")


def test_load_checkpoint_puts_the_model_on_the_asked_device_in_eval_mode(saved):
    _, full, _ = saved
    model, _ = load_checkpoint(full, device="meta")  # the meta device stands in for a GPU
    assert {p.device.type for p in model.parameters()} == {"meta"} and not model.training


def test_a_checkpoint_is_written_beside_its_place_then_moved_and_a_failed_save_leaves_nothing(saved, tiny_bert, tmp_path,
                                                                                            monkeypatch):
    model, full, _ = saved
    nested = tmp_path / "runs" / "a" / "best"  # parent folders are made
    seen = []
    real = model.tokenizer.save_pretrained
    monkeypatch.setattr(model.tokenizer, "save_pretrained", lambda folder: seen.append(Path(folder)) or real(folder))
    save_checkpoint(model, nested, toy_meta(tiny_bert))
    assert seen[0].parent == nested.parent and seen[0].name.startswith(".best.")  # a hidden folder on the same disk
    assert (nested / "cott.json").read_text().startswith('{\n  "format": "cott-checkpoint",\n  "version": 1,')
    assert [p.name for p in nested.parent.iterdir()] == ["best"]

    def fail(folder):
        raise OSError("disk full")

    monkeypatch.setattr(model.tokenizer, "save_pretrained", fail)
    before = sorted(p.name for p in full.iterdir())
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, full, toy_meta(tiny_bert), weights="delta")
    assert sorted(p.name for p in full.iterdir()) == before and _config(full)["weights"] == "full"
    assert sorted(p.name for p in full.parent.iterdir() if p.name.startswith(".")) == []


NON_ASCII_SAVE = """
import sys
import torch
from cott import get_task, save_checkpoint
from cott.checkpoint import update_config
from train.build import build_model
from helpers import toy_meta

backbone, out = sys.argv[1:]
torch.manual_seed(0)
model = build_model(get_task("jsonl"), "cott", backbone, ["véhicule", "animal"], ["café", "cat", "naïve"])
save_checkpoint(model, out, toy_meta(backbone, description="Étape → réponse"))
update_config(out, metrics={"val": {"note": "über"}})
"""


def test_a_config_with_non_ascii_labels_is_written_as_utf8_whatever_the_locale(tiny_bert, tmp_path):
    """cott.json is read as UTF-8: it is written as UTF-8 too, also by a process whose locale is plain ASCII."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    env = os.environ | {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
                        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    probe = subprocess.run([sys.executable, "-c", "import locale; print(locale.getpreferredencoding(False))"],
                           env=env, capture_output=True, text=True)
    if "utf" in probe.stdout.lower():
        pytest.skip("this platform's C locale writes UTF-8 anyway: the test would not tell")
    out = tmp_path / "ckpt"
    script = NON_ASCII_SAVE.encode("ascii", "backslashreplace").decode()  # an ASCII command line: \xe9 escapes
    done = subprocess.run([sys.executable, "-c", script, str(tiny_bert), str(out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "cott.json").read_bytes().decode("utf-8"))
    assert config["description"] == "Étape → réponse" and config["metrics"]["val"]["note"] == "über"
    model, loaded = load_checkpoint(out)
    assert model.answer.labels == ["café", "cat", "naïve"] and model.known_steps() == [("véhicule",), ("animal",)]
    assert loaded.answer_verbalizer == model.answer.to_dict()


def test_a_delta_over_a_headless_backbone_must_carry_the_head_the_backbone_lacks(saved, tiny_bert, tmp_path):
    """A delta over an encoder shipped without an MLM head (like MiniLM) brings the head; one that lost it is refused."""
    model, _, delta = saved
    headless = tmp_path / "headless"
    AutoModelForMaskedLM.from_pretrained(tiny_bert).bert.save_pretrained(headless, safe_serialization=True)
    file = delta / "delta.safetensors"
    tensors = load_file(file)
    head = sorted(k for k in tensors if k.startswith("cls."))
    assert "cls.predictions.transform.dense.weight" in head
    config = _config(delta)
    (delta / "cott.json").write_text(json.dumps(config | {"backbone": str(headless)}))
    reloaded, _ = load_checkpoint(delta)
    for name, tensor in model.mlm.state_dict().items():
        assert torch.equal(reloaded.mlm.state_dict()[name], tensor), name
    save_file({k: v for k, v in tensors.items() if k != "cls.predictions.transform.dense.weight"}, file)
    _refused(delta, f"{file}: lacks ['cls.predictions.transform.dense.weight'], which the backbone {str(headless)!r} "
                    "does not have either: the checkpoint is incomplete")
