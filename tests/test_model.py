"""CoTTModel: label scores read at the masks equal the masked LM's own logits of the label words (BERT, RoBERTa,
DistilBERT), soft labels and the linear head add what they say, batching pads without changing an answer."""
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, ElectraConfig, ElectraForMaskedLM

from cott import CoTTModel, Template, Verbalizer

TEMPLATE = "[T] The kind is [C] . The thing is [A] ."
ANSWERS = {"cat": ["cat"], "big_bus": ["big bus"], "pet": ["cat", "dog"]}  # one word, two tokens, two words
STEPS = {"animal": ["animal"], "vehicle": ["vehicle"]}
TEXTS = ["i saw a cat today", "there is a big red truck near the house", "my friend likes this horse"]


def _model(backbone, **kwargs) -> CoTTModel:
    torch.manual_seed(0)
    mlm = AutoModelForMaskedLM.from_pretrained(backbone)
    return CoTTModel(mlm, AutoTokenizer.from_pretrained(backbone), Template(TEMPLATE), Verbalizer(list(ANSWERS), ANSWERS),
                     Verbalizer(list(STEPS), STEPS), proj_dim=8, **kwargs).eval()


def _word_ids(tokenizer, word) -> list[int]:
    bpe = "Roberta" in type(tokenizer).__name__  # a byte-level BPE word after a space is another token
    return tokenizer.encode((" " + word) if bpe else word, add_special_tokens=False)


def _pooled(logits, tokenizer, words: dict) -> torch.Tensor:
    """(N, vocab) full MLM logits -> (N, labels): the mean over a label's words of the mean over their tokens."""
    cols = []
    for label_words in words.values():
        per_word = [logits[:, _word_ids(tokenizer, w)].mean(-1) for w in label_words]
        cols.append(torch.stack(per_word, -1).mean(-1))
    return torch.stack(cols, -1)


@pytest.mark.parametrize("backbone", ["tiny_bert", "tiny_roberta", "tiny_distilbert", "lively_bert"])
def test_label_scores_are_the_masked_lms_logits_of_the_label_words(request, backbone):
    model = _model(request.getfixturevalue(backbone))
    with torch.no_grad():  # a trained decoder bias is not zero as a fresh one is
        model.mlm.get_output_embeddings().bias.copy_(torch.linspace(-2, 2, len(model.tokenizer)))
    tok = model.tokenizer
    encodings = [model.template.encode(tok, {"text": t}, None, 48) for t in TEXTS]
    batch = model.collate(encodings)
    with torch.no_grad():
        out = model(**batch)
        full = model.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    rows = torch.arange(len(TEXTS))
    assert torch.allclose(out["answer_logits"], _pooled(full[rows, batch["answer_pos"]], tok, ANSWERS), atol=1e-4)
    step_logits = _pooled(full[rows, batch["step_pos"][:, 0]], tok, STEPS)
    assert torch.allclose(out["step_logits"][:, 0], step_logits, atol=1e-4)
    assert torch.equal(out["step_rows"], rows)
    hidden = model.encode(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(out["answer_hidden"], hidden[rows, batch["answer_pos"]])


def test_first_token_pooling_reads_only_the_first_sub_token(tiny_bert):
    torch.manual_seed(0)
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = CoTTModel(mlm, tok, Template("[T] The thing is [A] ."), Verbalizer(list(ANSWERS), ANSWERS, pooling="first"),
                      proj_dim=8).eval()
    batch = model.collate([model.template.encode(tok, {"text": t}, None, 48) for t in TEXTS])
    with torch.no_grad():
        got = model(**batch)["answer_logits"]
        full = mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    at = full[torch.arange(3), batch["answer_pos"]]
    ids = {w: tok.convert_tokens_to_ids(w) for w in ("cat", "big", "dog")}
    want = torch.stack([at[:, ids["cat"]], at[:, ids["big"]], (at[:, ids["cat"]] + at[:, ids["dog"]]) / 2], -1)
    assert torch.allclose(got, want, atol=1e-4)


def test_soft_labels_add_their_vectors_and_biases(lively_bert):
    words, soft = _model(lively_bert), _model(lively_bert, soft_verbalizer=True)
    batch = words.collate([words.template.encode(words.tokenizer, {"text": t}, None, 48) for t in TEXTS])
    with torch.no_grad():
        start, start_words = soft(**batch), words(**batch)
        assert torch.allclose(start["answer_logits"], start_words["answer_logits"])  # zero at the start
        soft.answer_soft.weight.copy_(torch.arange(96.0).view(3, 32) / 100)
        soft.answer_soft.bias.copy_(torch.tensor([1.0, -2.0, 0.5]))
        soft.step_soft.bias.copy_(torch.tensor([3.0, -1.0]))
        out = soft(**batch)
        z = soft.mlm.cls.predictions.transform(out["answer_hidden"])  # the MLM head before the vocabulary
        want = start_words["answer_logits"] + z @ soft.answer_soft.weight.T + soft.answer_soft.bias
    assert torch.allclose(out["answer_logits"], want, atol=1e-4)
    assert torch.allclose(out["step_logits"], start_words["step_logits"] + torch.tensor([3.0, -1.0]), atol=1e-4)
    assert soft.soft_verbalizer and not words.soft_verbalizer


def test_soft_labels_follow_the_dtype_of_a_lower_precision_backbone(lively_bert):
    model = _model(lively_bert, soft_verbalizer=True)
    with torch.no_grad():
        model.answer_soft.weight.normal_()
        model.answer_soft.bias.normal_()
    batch = model.collate([model.template.encode(model.tokenizer, {"text": t}, None, 48) for t in TEXTS])
    with torch.no_grad():
        full = model(**batch)["answer_logits"]
        model.mlm.to(torch.bfloat16)  # the label vectors stay float32
        half = model(**batch)["answer_logits"]
    assert half.dtype == torch.bfloat16 and model.answer_soft.weight.dtype == torch.float32
    assert torch.allclose(half.float(), full, atol=0.2, rtol=0.05)


def test_linear_head_reads_the_answer_position_through_a_classifier(tiny_bert):
    torch.manual_seed(0)
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    model = CoTTModel(mlm, AutoTokenizer.from_pretrained(tiny_bert), Template("[T] ."), Verbalizer(["a", "b", "c"]),
                      answer_head="linear", proj_dim=8, soft_verbalizer=True).eval()
    assert model.classifier.out_features == 3 and model.answer_soft is None and not model.soft_verbalizer
    assert model.dropout.p == mlm.config.hidden_dropout_prob
    batch = model.collate([model.template.encode(model.tokenizer, {"text": t}, None, 48) for t in TEXTS])
    assert (batch["answer_pos"] == 0).all()  # no [A]: the first token
    with torch.no_grad():
        out = model(**batch, project=True)
        hidden = model.encode(batch["input_ids"], batch["attention_mask"])[:, 0]
    assert torch.allclose(out["answer_logits"], model.classifier(hidden), atol=1e-6)
    assert torch.allclose(out["answer_projection"], model.projection(hidden), atol=1e-6)
    assert out["answer_projection"].shape == (3, 8) and "step_logits" not in out
    model.train()
    with torch.no_grad():  # dropout acts in training
        assert not torch.allclose(model(**batch)["answer_logits"], out["answer_logits"])


def test_only_step_one_rows_have_step_logits(tiny_bert):
    model = _model(tiny_bert)
    tok = model.tokenizer
    encodings = [model.template.encode(tok, {"text": TEXTS[0]}, ["vehicle"], 48),
                 model.template.encode(tok, {"text": TEXTS[1]}, None, 48),
                 model.template.encode(tok, {"text": TEXTS[2]}, ["animal"], 48)]
    batch = model.collate(encodings)
    assert batch["step_pos"][:, 0].tolist() == [-1, encodings[1].step_pos[0], -1]
    with torch.no_grad():
        out = model(**batch)
        alone = model(**model.collate(encodings[1:2]))
    assert out["step_rows"].tolist() == [1] and out["step_logits"].shape == (1, 1, 2)
    assert torch.allclose(out["step_logits"], alone["step_logits"], atol=1e-5)
    assert "answer_projection" not in out


def test_collate_pads_with_the_pad_token_and_masks_the_padding(tiny_bert):
    model = _model(tiny_bert)
    tok = model.tokenizer
    encodings = [model.template.encode(tok, {"text": t}, None, 48) for t in TEXTS]
    batch = model.collate(encodings)
    lengths = [len(e.input_ids) for e in encodings]
    assert batch["input_ids"].shape == (3, max(lengths)) and batch["input_ids"].dtype == torch.long
    for i, e in enumerate(encodings):
        assert batch["input_ids"][i, : lengths[i]].tolist() == e.input_ids
        assert (batch["input_ids"][i, lengths[i]:] == tok.pad_token_id).all()
        assert batch["attention_mask"][i].tolist() == [1] * lengths[i] + [0] * (max(lengths) - lengths[i])
        assert batch["answer_pos"][i] == e.answer_pos and batch["step_pos"][i].tolist() == e.step_pos
    with torch.no_grad():  # padding changes no answer
        padded = model(**batch)["answer_logits"]
        single = torch.cat([model(**model.collate([e]))["answer_logits"] for e in encodings])
    assert torch.allclose(padded, single, atol=1e-5)
    assert {k: v.dtype for k, v in batch.items()} == {k: torch.long for k in batch}
    prompt = CoTTModel(model.mlm, tok, Template("[T] The thing is [A] ."), Verbalizer(list(ANSWERS), ANSWERS), proj_dim=8)
    one = prompt.collate([prompt.template.encode(tok, {"text": TEXTS[0]}, None, 48)])
    assert one["step_pos"].tolist() == [[-1]] and prompt.known_steps() == [] and prompt.num_step_slots == 0


def test_head_parameters_are_the_mlm_heads_own_without_the_tied_decoder(tiny_bert, tiny_roberta, tiny_distilbert):
    for backbone, prefix in ((tiny_bert, "cls."), (tiny_roberta, "lm_head."), (tiny_distilbert, "vocab_")):
        model = _model(backbone)
        names = {id(p): n for n, p in model.masked_lm().named_parameters()}
        head = [names[id(p)] for p in model.head_parameters()]
        assert head and all(n.startswith(prefix) for n in head), head
        embeddings = model.masked_lm().get_input_embeddings().weight
        assert all(p is not embeddings for p in model.head_parameters())
        body = [n for n in names.values() if not n.startswith(prefix)]
        assert body and not set(head) & set(body)
    bert = _model(tiny_bert)  # BERT: the transform and the decoder's bias (its weight is the embeddings)
    head = {n for n, p in bert.masked_lm().named_parameters() if any(p is q for q in bert.head_parameters())}
    assert head == {n for n, _ in bert.masked_lm().named_parameters() if n.startswith("cls.")}
    assert "cls.predictions.bias" in head and any("transform.dense" in n for n in head)


def test_a_peft_wrapped_model_reads_through_its_base_model(tiny_bert):
    from peft import LoraConfig, get_peft_model

    model = _model(tiny_bert)
    base = model.mlm
    model.mlm = get_peft_model(model.mlm, LoraConfig(r=2, target_modules=["query", "value"]))
    assert model.masked_lm() is base
    assert len(model.head_parameters()) == len([n for n, _ in base.named_parameters() if n.startswith("cls.")])


def test_the_linear_head_needs_no_label_words(tiny_bert):
    mlm, tok = AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert)
    unspeakable = Verbalizer(["a", "b"], {"a": ["\x01"], "b": ["\x02"]})  # words a WordPiece vocabulary drops
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        CoTTModel(mlm, tok, Template("[T] [A] ."), unspeakable)
    model = CoTTModel(mlm, tok, Template("[T] ."), unspeakable, answer_head="linear")
    assert model.classifier.out_features == 2 and model.answer.token_ids is None


def test_construction_errors_name_the_problem(tiny_bert, tmp_path):
    mlm, tok = AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match=r"^a template with \[C\] slots needs a step verbalizer$"):
        CoTTModel(mlm, tok, Template(TEMPLATE), Verbalizer(["a"]))
    with pytest.raises(ValueError, match=r"^answer_head must be 'verbalizer' or 'linear', not 'mlp'$"):
        CoTTModel(mlm, tok, Template("[T] [A] ."), Verbalizer(["a"]), answer_head="mlp")
    electra = ElectraForMaskedLM(ElectraConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=37))
    with pytest.raises(NotImplementedError, match=r"^CoTT does not know the MLM head layout of ElectraForMaskedLM$"):
        CoTTModel(electra, tok, Template("[T] [A] ."), Verbalizer(["a"]))


def test_structure(tiny_bert):
    model = _model(tiny_bert)
    # the label words' token ids are rebuilt from the verbalizers, never stored with the weights
    assert not {"answer_tokens", "answer_weights", "step_tokens", "step_weights"} & set(model.state_dict())
    assert CoTTModel(model.mlm, model.tokenizer, Template(TEMPLATE), Verbalizer(["a"]), Verbalizer(["b", "c"])).projection[-1].out_features == 128
    h = torch.randn(4, 32)
    with torch.no_grad():  # g is not affine: g(h) + g(-h) != 2 g(0)
        assert not torch.allclose(model.projection(h) + model.projection(-h), 2 * model.projection(torch.zeros(1, 32)), atol=1e-4)
    assert model.num_step_slots == 1 and model.known_steps() == [("animal",), ("vehicle",)]
    assert model.step_phrase(("vehicle",)) == ["vehicle"] and model.projection[-1].out_features == 8
    assert model.projection[0].in_features == model.projection[0].out_features == 32
    assert model.step_temperature == 1.0 and model.classifier is None and model.dropout is None


def test_the_joint_step_distribution_is_the_product_of_the_slots_in_known_steps_order(tiny_bert):
    torch.manual_seed(0)
    steps = ["animal", "vehicle", "house"]
    model = CoTTModel(AutoModelForMaskedLM.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert),
                      Template('[T] The [C] " [T:subj] " and the [C] " [T:obj] " : [A] .'), Verbalizer(["cat", "dog"]),
                      Verbalizer(steps), proj_dim=8)
    assert model.known_steps() == [(a, b) for a in steps for b in steps]
    logits = torch.randn(2, 2, 3)
    for temperature in (1.0, 2.0):
        model.step_temperature = temperature
        p = (logits / temperature).softmax(-1)
        expected = torch.stack([p[:, 0, i] * p[:, 1, j] for i in range(3) for j in range(3)], dim=1)
        assert torch.allclose(model.step_distribution(logits), expected, atol=1e-6)
    single = _model(tiny_bert)
    assert single.known_steps() == [("animal",), ("vehicle",)]
    assert torch.allclose(single.step_distribution(logits[:, :1, :2]), logits[:, 0, :2].softmax(-1), atol=1e-6)
