"""Backbone loading: an encoder shipped without an MLM head loads with a fresh, tied head and no false alarm."""
from __future__ import annotations

import logging

from transformers import BertConfig, BertModel

from cott.backbones import load_masked_lm


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_headless_encoder_loads_with_a_tied_head_and_without_the_corrupted_warning(tmp_path):
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    BertModel(config).save_pretrained(tmp_path)  # encoder only, like sentence-transformers' MiniLM
    records = _Records()
    hf_root = logging.getLogger("transformers")
    hf_root.addHandler(records)
    try:
        model = load_masked_lm(str(tmp_path))
    finally:
        hf_root.removeHandler(records)
    assert not any("seem corrupted" in m for m in records.messages)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert model.cls.predictions.bias.shape == (40,)
    # other warnings still go through: the filter is removed after loading
    assert not logging.getLogger("transformers.modeling_utils").filters
