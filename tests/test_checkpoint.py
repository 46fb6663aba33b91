"""A trained model saved (full, delta, delta in float16 or bfloat16, LoRA merged), reloaded, answers as in memory."""
import random

import pytest
import torch
from safetensors.torch import load_file

from cott import load_checkpoint, save_checkpoint
from cott.batching import TrainingBatcher
from cott.data import load_jsonl
from cott.inference import reason
from cott.losses import LossConfig, cott_loss
from helpers import toy_meta, toy_model

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
    assert config["weights"] == weights and config["weights_dtype"] == dtype
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
