"""Dynamic int8 quantisation (cott.quantization): only the encoder's linear layers change, answers stay close to the
float model's, CPU only, and every route to it (pipeline, train.evaluate, the app's COTT_QUANTIZE) really applies it."""
import json
import sys
import warnings

import pytest
import torch
from torch import nn

from cott import CoTTPipeline, save_checkpoint
from cott.data import load_jsonl
from cott.inference import reason
from cott.quantization import quantize
from cott_demo import serving
from helpers import toy_meta, toy_model
from train.evaluate import main as evaluate_main


def _quantised_linears(model) -> tuple[int, int]:
    """(dynamic int8 linear layers, float nn.Linear layers) in the model's encoder."""
    modules = list(model.masked_lm().base_model.modules())
    int8 = sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in modules)
    return int8, sum(type(m) is nn.Linear for m in modules)


def test_only_the_encoder_is_quantised_and_answers_stay_close(tiny_bert, toy_data):
    model, _ = toy_model(tiny_bert, toy_data)
    model.eval()
    fields = [e.fields for e in load_jsonl(toy_data, "test")]
    before = reason(model, fields, None, 48)
    head = model.masked_lm().get_output_embeddings().weight
    assert _quantised_linears(model) == (0, 6 * model.masked_lm().config.num_hidden_layers)
    assert quantize(model, "int8") is model and not model.training
    after = reason(model, fields, None, 48)
    assert _quantised_linears(model) == (6 * model.masked_lm().config.num_hidden_layers, 0)
    tied = model.masked_lm().get_output_embeddings().weight
    assert tied is head and tied.dtype == torch.float32  # the decoder (label words) stays float and tied
    for key in ("p_steps", "p_answer", "p_rectified"):
        assert not torch.equal(after[key], before[key])  # the int8 path really ran
        assert torch.allclose(after[key], before[key], atol=0.05)


def test_quantize_refuses_an_unknown_kind_and_a_model_off_the_cpu(tiny_bert, toy_data):
    model, _ = toy_model(tiny_bert, toy_data)
    with pytest.raises(ValueError, match="unknown quantisation"):
        quantize(model, "int4")
    with pytest.raises(ValueError, match="CPU only"):
        quantize(model.to("meta"), "int8")


def test_a_model_split_across_devices_names_every_device(tiny_bert, toy_data):
    model, _ = toy_model(tiny_bert, toy_data)
    model.masked_lm().base_model.embeddings.to("meta")
    with pytest.raises(ValueError, match=r"CPU only; load the model with device='cpu' \(it is on cpu, meta\)$"):
        quantize(model, "int8")


def test_quantising_shows_the_user_none_of_torchs_deprecation_warnings(tiny_bert, toy_data):
    model, _ = toy_model(tiny_bert, toy_data)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # torch.ao.quantization warns (DeprecationWarning, UserWarning) on every call
        quantize(model, "int8")
    assert [str(w.message) for w in shown] == []


def test_a_torch_without_dynamic_quantisation_says_to_serve_without_it(tiny_bert, toy_data, monkeypatch):
    model, _ = toy_model(tiny_bert, toy_data)
    monkeypatch.setitem(sys.modules, "torch.ao.quantization", None)  # importing it now raises ImportError
    with pytest.raises(RuntimeError, match=r"has no torch\.ao\.quantization\.quantize_dynamic; serve without quant"):
        quantize(model, "int8")
    assert _quantised_linears(model) == (0, 6 * model.masked_lm().config.num_hidden_layers)


def test_pipeline_evaluate_and_the_app_apply_it(tiny_bert, toy_data, tmp_path, monkeypatch):
    model, _ = toy_model(tiny_bert, toy_data)
    ckpt = save_checkpoint(model, tmp_path / "ckpt", toy_meta(tiny_bert))
    float_pipe = CoTTPipeline.from_pretrained(str(ckpt), device="cpu")
    int8_pipe = CoTTPipeline.from_pretrained(str(ckpt), device="cpu", quantize="int8")
    assert _quantised_linears(float_pipe.model)[0] == 0 and _quantised_linears(int8_pipe.model)[1] == 0
    a, b = float_pipe("i saw a cat today"), int8_pipe("i saw a cat today")
    assert a.p_rectified != b.p_rectified and b.p_rectified == pytest.approx(a.p_rectified, abs=0.05)

    evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--record"])
    res = evaluate_main(["--checkpoint", str(ckpt), "--data", str(toy_data), "--quantize", "int8", "--record"])
    assert res["quantize"] == "int8" and json.loads((ckpt / "metrics_test_int8.json").read_text())["quantize"] == "int8"
    assert json.loads((ckpt / "metrics_test.json").read_text())["quantize"] is None  # the float reading is kept
    assert set(json.loads((ckpt / "cott.json").read_text())["metrics"]) >= {"test", "test_int8"}

    monkeypatch.setattr(serving, "QUANTIZE", "int8")
    monkeypatch.setattr(serving, "_PIPELINES", {})
    monkeypatch.setattr(serving, "serving_device", lambda: "cpu")
    assert _quantised_linears(serving.load_pipeline(str(ckpt)).model)[1] == 0
