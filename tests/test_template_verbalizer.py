"""Slot filling, truncation and multi-token label words, for WordPiece and byte-level BPE tokenizers."""
import pytest
import torch
from transformers import AutoTokenizer

from cott.template import Template
from cott.verbalizer import Verbalizer, label_to_words


@pytest.fixture(params=["tiny_bert", "tiny_roberta"])
def tokenizer(request):
    return AutoTokenizer.from_pretrained(request.getfixturevalue(request.param))


def test_step_one_masks_and_step_two_injects(tokenizer):
    tpl = Template("[T] The domain is [C]. The area is [A].")
    one = tpl.encode(tokenizer, {"text": "i saw a cat today"}, None, 64)
    assert one.input_ids[one.answer_pos] == tokenizer.mask_token_id
    assert [one.input_ids[p] for p in one.step_pos] == [tokenizer.mask_token_id]
    two = tpl.encode(tokenizer, {"text": "i saw a cat today"}, ["animal"], 64)
    assert two.step_pos == [] and two.input_ids.count(tokenizer.mask_token_id) == 1
    assert two.input_ids[two.answer_pos] == tokenizer.mask_token_id
    assert "animal" in tokenizer.decode(two.input_ids)


def test_relation_template_has_two_step_slots(tokenizer):
    tpl = Template('[T] The [C] " [T:subj] " and the [C] " [T:obj] " : " [T:subj] " [A] " [T:obj] " .')
    enc = tpl.encode(tokenizer, {"text": "ada works for acme", "subj": "ada", "obj": "acme"}, None, 64)
    assert tpl.num_step_slots == 2 and len(enc.step_pos) == 2
    assert all(enc.input_ids[p] == tokenizer.mask_token_id for p in enc.step_pos + [enc.answer_pos])
    with pytest.raises(ValueError, match="2 \\[C\\] slot"):
        tpl.encode(tokenizer, {"text": "x", "subj": "a", "obj": "b"}, ["person"], 64)


def test_long_text_is_truncated_never_the_masks(tokenizer):
    tpl = Template("[T] The domain is [C]. The area is [A].")
    text = " ".join(["house"] * 5000)
    for step in (None, ["vehicle"]):
        enc = tpl.encode(tokenizer, {"text": text}, step, 32)
        assert enc.truncated and len(enc.input_ids) == 32
        assert enc.input_ids[enc.answer_pos] == tokenizer.mask_token_id
        assert enc.input_ids[-1] == tokenizer.sep_token_id
        decoded = tokenizer.decode(enc.input_ids)
        assert "area is" in decoded


def test_template_too_long_for_max_length_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match="too short for this prompt"):
        Template("[T] The domain is [C]. The area is [A].").encode(tokenizer, {"text": "a cat"}, None, 8)


def test_long_entity_spans_are_cut_after_the_text_never_the_masks_or_step(tokenizer):
    tpl = Template('[T] The [C] " [T:subj] " and the [C] " [T:obj] " : " [T:subj] " [A] " [T:obj] " .')
    subj = " ".join(["house"] * 40)
    fields = {"text": f"{subj} hired ada", "subj": subj, "obj": "ada"}
    for step in (None, ["organization", "person"]):
        enc = tpl.encode(tokenizer, fields, step, 48)
        assert enc.truncated and 44 <= len(enc.input_ids) <= 48
        assert enc.input_ids[enc.answer_pos] == tokenizer.mask_token_id
        assert all(enc.input_ids[p] == tokenizer.mask_token_id for p in enc.step_pos)
        decoded = tokenizer.decode(enc.input_ids)
        assert decoded.count("ada") >= 2 and decoded.count("house") >= 2
        if step:
            assert "organization" in decoded and "person" in decoded


@pytest.mark.parametrize("before, between", [(60, 2), (3, 60)])
def test_long_text_keeps_the_tokens_around_the_subject_and_object(tokenizer, before, between):
    tpl = Template('[T] " [T:subj] " [A] " [T:obj] " .')
    filler = lambda n: " ".join(["house"] * n)  # noqa: E731
    text = f"{filler(before)} ada {filler(between)} acme {filler(60)}"
    enc = tpl.encode(tokenizer, {"text": text, "subj": "ada", "obj": "acme"}, None, 32)
    assert enc.truncated and len(enc.input_ids) == 32
    kept = tokenizer.decode(enc.input_ids[1 : enc.answer_pos])  # the text and the first subject mention
    assert kept.count("ada") == 2 and "acme" in kept  # both mentions stay in the text, wherever they are
    same = tpl.encode(tokenizer, {"text": text, "subj": "ada", "obj": "acme"}, None, 32,
                      tpl.text_ids(tokenizer, text))
    assert same.input_ids == enc.input_ids  # pre-tokenized text (training) gives the prompt inference gives


@pytest.mark.parametrize("subject_first", [True, False])
def test_marked_text_keeps_the_marked_mentions_not_an_earlier_repeat(tokenizer, subject_first):
    """[T:marked] reads the sentence with "@ subject @" and "# object #"; cut, it keeps those, with their marks."""
    tpl = Template('[T:marked] " [T:subj] " [A] " [T:obj] " .')
    filler = lambda n: " ".join(["house"] * n)  # noqa: E731
    pair = "@ ada @ hired # acme #" if subject_first else "# acme # hired @ ada @"
    marked = f"ada acme {filler(60)} {pair} {filler(60)}"  # an unmarked repeat of the mentions comes first
    fields = {"text": marked.replace("@ ", "").replace("# ", ""), "subj": "ada", "obj": "acme", "marked": marked}
    enc = tpl.encode(tokenizer, fields, None, 32)
    squeeze = lambda ids: tokenizer.decode(ids).replace(" ", "")  # noqa: E731
    assert enc.truncated and len(enc.input_ids) == 32
    assert squeeze(tokenizer.encode(" " + pair, add_special_tokens=False)) in squeeze(enc.input_ids[1 : enc.answer_pos])
    assert tpl.encode(tokenizer, fields, None, 32, tpl.text_ids(tokenizer, marked)).input_ids == enc.input_ids
    with pytest.raises(ValueError, match="exactly one main text slot"):
        Template('[T] [T:marked] [A]')


def test_bad_templates_are_refused():
    with pytest.raises(ValueError, match="main text slot"):
        Template("The area is [A].")
    with pytest.raises(ValueError, match="at most one"):
        Template("[T] [A] [A]")


def test_label_words_from_names():
    assert label_to_words("credit_limit_change") == "credit limit change"
    assert label_to_words("per:city_of_birth") == "per:city of birth"
    assert label_to_words("org/top-members__employees") == "org top members employees"
    assert label_to_words("Peop") == "Peop"


def test_multi_token_label_words_pool_their_subtokens(tokenizer):
    v = Verbalizer(["animal", "vehicle", "horse_and_cat"], {"vehicle": ["car", "bus"]}).bind(tokenizer)
    assert v.weights.shape == (3, len(v.token_ids))
    assert v.weights.sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    row = v.weights[2]
    expected = tokenizer.encode((" " if "roberta" in type(tokenizer).__name__.lower() else "") + "horse and cat",
                                add_special_tokens=False)
    assert len(expected) >= 3
    got = sorted(v.token_ids[row > 0].tolist())
    assert got == sorted(set(expected))


def test_bpe_label_words_take_the_leading_space_form(tiny_roberta):
    tok = AutoTokenizer.from_pretrained(tiny_roberta)
    v = Verbalizer(["cat"]).bind(tok)
    assert v.token_ids.tolist() == tok.encode(" cat", add_special_tokens=False)
    assert v.token_ids.tolist() != tok.encode("cat", add_special_tokens=False)


def test_verbalizer_refuses_bad_label_words():
    with pytest.raises(ValueError, match="unknown labels"):
        Verbalizer(["a"], {"b": "x"})
    with pytest.raises(ValueError, match="empty"):
        Verbalizer(["a"], {"a": " "})


def test_marked_mentions_are_found_whether_the_bpe_merges_the_space_into_the_mark(tmp_path):
    """A byte-level BPE that learned " @" and " #" as tokens reads a mark inside the text otherwise than at its start:
    a cut text still keeps the marked mentions in either place."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["house @ ada @ hired # acme # house"] * 50, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(tmp_path))
    tokenizer = RobertaTokenizerFast(vocab=str(tmp_path / "vocab.json"), merges=str(tmp_path / "merges.txt"))
    assert tokenizer.encode(" @", add_special_tokens=False) != tokenizer.encode("@", add_special_tokens=False)
    tpl = Template('[T:marked] " [T:subj] " [A] " [T:obj] " .')
    pair = "@ ada @ hired # acme #"
    for marked in (f"{pair} {' '.join(['house'] * 80)}", f"{' '.join(['house'] * 80)} {pair}"):
        enc = tpl.encode(tokenizer, {"subj": "ada", "obj": "acme", "marked": marked}, None, 24)
        kept = tokenizer.decode(enc.input_ids[enc.text_pos[0] : enc.text_pos[-1] + 1])
        assert enc.truncated and pair in kept


@pytest.mark.parametrize("words", [1000, 1100])
def test_a_main_text_keeps_its_first_1024_tokens_whatever_the_prompt_allows(tokenizer, words):
    """The main text is cut at 1,024 tokens (TEXT_TOKEN_LIMIT, the bound on the work per input) before it is fitted to
    the prompt, tokenized here or beforehand (training): a shorter text stays whole, a longer one keeps its head."""
    tpl = Template("[T] The domain is [C]. The area is [A].")
    text = " ".join(["house"] * words)
    whole = tokenizer.encode(tpl.main_string(text), add_special_tokens=False)
    kept = min(len(whole), 1024)
    assert (len(whole) > 1024) == (words > 1024)
    for ids in (None, tpl.text_ids(tokenizer, text)):
        enc = tpl.encode(tokenizer, {"text": text}, None, 4000, ids)
        assert enc.text_index == list(range(kept))
        assert [enc.input_ids[p] for p in enc.text_pos] == whole[:kept]


@pytest.mark.parametrize("template, before", [("[T] The area is [A].", ""), ("Text: [T] The area is [A].", " ")])
def test_the_main_text_is_tokenized_as_running_text_after_what_precedes_it(tokenizer, template, before):
    """After a space in the template the text's first word is tokenized as a word inside a sentence (byte-level BPE
    has other tokens for "cat" and " cat"); at the prompt's start, as a sentence's first word."""
    text = "cat saw a dog today"
    enc = Template(template).encode(tokenizer, {"text": f"  {text} "}, None, 64)
    assert [enc.input_ids[p] for p in enc.text_pos] == tokenizer.encode(before + text, add_special_tokens=False)


def test_the_main_text_takes_its_own_slots_space_not_another_fields(tiny_roberta):
    """With another text field before it, the main text is still tokenized by the space before its own slot."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta)
    for template, before in (("About [T:subj]:[T] The area is [A].", ""), ('"[T:subj]" [T] The area is [A].', " ")):
        tpl = Template(template)
        assert tpl.main_string("  cat saw a dog ") == before + "cat saw a dog"
        enc = tpl.encode(tokenizer, {"text": "cat saw a dog", "subj": "ada"}, None, 64)
        assert [enc.input_ids[p] for p in enc.text_pos] == tokenizer.encode(before + "cat saw a dog", add_special_tokens=False)


@pytest.mark.parametrize("before, after", [(40, 40), (40, 3), (3, 40), (40, 0), (0, 40)])
def test_a_cut_text_keeps_the_mention_in_the_middle_of_its_window(tiny_bert, before, after):
    """Around a single mention the kept tokens are shared evenly before and after it (as far as the text allows)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tpl = Template('[T] " [T:subj] " [A] .')
    text = " ".join(["house"] * before + ["ada"] + ["house"] * after)
    enc = tpl.encode(tokenizer, {"text": text, "subj": "ada"}, None, 32)
    ids = tpl.text_ids(tokenizer, text)
    at = ids.index(tokenizer.convert_tokens_to_ids("ada"))
    kept = enc.text_index
    room = len(kept)
    assert enc.truncated and at in kept and kept == list(range(kept[0], kept[0] + room))
    left, right = at - kept[0], kept[-1] - at
    if before >= room and after >= room:
        assert abs(left - right) <= 1
    else:  # against an edge of the text: the window starts or ends there
        assert kept[0] == 0 or kept[-1] == len(ids) - 1


def test_every_text_slot_keeps_at_least_one_token_and_a_shorter_prompt_is_refused(tokenizer):
    """Cut to the bone, the main text and each field keep one token: the shortest max_length accepted is the length of
    the prompt whose text and fields are one token each; below it, a clear refusal."""
    tpl = Template('[T] " [T:subj] " [A] " [T:obj] " .')
    long = {"text": "i saw a big red cat near the house today", "subj": "ada acme ada", "obj": "paris house"}
    whole = len(tpl.encode(tokenizer, long, None, 200).input_ids)
    sizes = [len(tpl.text_ids(tokenizer, long["text"]))] + [len(tokenizer.encode(" " + long[k], add_special_tokens=False))
                                                           for k in ("subj", "obj")]
    bone = whole - sum(n - 1 for n in sizes)
    assert len(tpl.encode(tokenizer, long, None, bone).input_ids) == bone
    with pytest.raises(ValueError, match="too short"):
        tpl.encode(tokenizer, long, None, bone - 1)


def test_literals_and_steps_are_tokenized_with_the_space_before_them(tokenizer):
    """Each literal piece and each step keeps the space before it in the template (byte-level BPE tokenizes " animal"
    and "animal" apart), the same word after a space and right after a quote alike."""
    tpl = Template('[T] The kind is [C] ("[C]"), the thing [A].')
    enc = tpl.encode(tokenizer, {"text": "i saw a cat"}, ["animal", "animal"], 64)

    def ids(s):
        return tokenizer.encode(s, add_special_tokens=False)

    body = enc.input_ids[enc.text_pos[-1] + 1 : enc.answer_pos]
    assert body == ids(" The kind is") + ids(" animal") + ids(' ("') + ids("animal") + ids('"), the thing')


def test_truncated_tells_whether_any_text_slot_was_cut(tokenizer):
    tpl = Template('[T] " [T:subj] " [A] .')
    fields = {"text": "cat", "subj": "ada acme ada acme ada acme ada acme"}
    whole = len(tpl.encode(tokenizer, fields, None, 200).input_ids)
    assert not tpl.encode(tokenizer, fields, None, whole).truncated
    cut = tpl.encode(tokenizer, fields, None, whole - 2)  # the one-token text cannot give: the subject is cut
    assert cut.truncated and len(cut.input_ids) == whole - 2


def test_encode_refusals_name_the_slots_and_the_missing_fields(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tpl = Template('[T] The [C] " [T:subj] " and the [C] " [T:obj] " : [A] .')
    with pytest.raises(ValueError) as err:
        tpl.encode(tok, {"text": "ada works for acme", "subj": "ada", "obj": "acme"}, ["person"], 64)
    assert str(err.value) == "template has 2 [C] slot(s), step has 1 part(s)"
    with pytest.raises(ValueError) as err:
        tpl.encode(tok, {"text": "ada works for acme"}, None, 64)
    assert str(err.value) == "missing text field(s) for the template: ['obj', 'subj']"
    with pytest.raises(ValueError) as err:
        tpl.encode(tok, {"subj": "ada", "obj": "acme"}, None, 64)
    assert str(err.value) == "missing text field(s) for the template: ['text']"
    ids = tpl.text_ids(tok, "ada works for acme")  # pre-tokenized, the main text needs no field
    enc = tpl.encode(tok, {"subj": "ada", "obj": "acme"}, None, 64, ids)
    assert enc.input_ids == tpl.encode(tok, {"text": "ada works for acme", "subj": "ada", "obj": "acme"}, None, 64).input_ids
    with pytest.raises(ValueError) as err:
        Template("The area is [A].")
    assert str(err.value) == "template must have exactly one main text slot, [T] or [T:marked]: 'The area is [A].'"
    with pytest.raises(ValueError) as err:
        Template("[T] [A] [A]")
    assert str(err.value) == "template must have at most one [A] slot: '[T] [A] [A]'"


def test_encode_defaults_to_step_one_and_the_configured_max_length(tiny_bert):
    from cott.config import MAX_LENGTH

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tpl = Template("[T] The domain is [C]. The area is [A].")
    text = " ".join(["house"] * (2 * MAX_LENGTH))
    enc = tpl.encode(tok, {"text": text})
    assert enc == tpl.encode(tok, {"text": text}, None, MAX_LENGTH)
    assert len(enc.input_ids) == MAX_LENGTH and enc.truncated and len(enc.step_pos) == 1


def test_a_mention_at_the_very_end_of_a_long_text_is_kept(tokenizer):
    tpl = Template('[T] " [T:subj] " [A] .')
    text = " ".join(["house"] * 80) + " ada"
    enc = tpl.encode(tokenizer, {"text": text, "subj": "ada"}, None, 24)
    ids = tpl.text_ids(tokenizer, text)
    assert enc.truncated and enc.text_index[-1] == len(ids) - 1  # the window ends with the mention
    assert "ada" in tokenizer.decode([enc.input_ids[p] for p in enc.text_pos])


def test_verbalizer_refusals_say_what_is_wrong():
    for labels, words, pooling, message in [
        ([], None, "mean", "a verbalizer needs at least one label"),
        (["a", "a"], None, "mean", "duplicate labels in verbalizer"),
        (["a"], None, "max", "pooling must be 'mean' or 'first', not 'max'"),
        (["a"], {"b": "x", "c": "y"}, "mean", "label words given for unknown labels: ['b', 'c']"),
        (["a"], {"a": ["x", " "]}, "mean", "empty label word for label 'a'"),
    ]:
        with pytest.raises(ValueError) as err:
            Verbalizer(labels, words, pooling)
        assert str(err.value) == message
    with pytest.raises(KeyError) as err:
        Verbalizer(["a", "b"]).index("c")
    assert err.value.args[0] == "unknown label 'c'"


def test_verbalizer_words_index_phrase_and_round_trip():
    v = Verbalizer(["per:city_of_birth", "no_relation"], {"no_relation": ["unrelated to", "none"]})
    assert len(v) == 2 and v.labels == ["per:city_of_birth", "no_relation"]
    assert v.index("no_relation") == 1 and v.index("per:city_of_birth") == 0
    assert v.words == {"per:city_of_birth": ["per:city of birth"], "no_relation": ["unrelated to", "none"]}
    assert v.phrase("no_relation") == "unrelated to" and v.phrase("per:city_of_birth") == "per:city of birth"
    assert Verbalizer(["a"], {"a": "x y"}).words == {"a": ["x y"]}  # one word given as a string
    d = v.to_dict()
    assert d == {"labels": v.labels, "words": v.words, "pooling": "mean"}
    back = Verbalizer.from_dict({**d, "pooling": "first"})
    assert back.labels == v.labels and back.words == v.words and back.pooling == "first"
    plain = Verbalizer.from_dict({"labels": ["a_b"]})
    assert plain.words == {"a_b": ["a b"]} and plain.pooling == "mean"
    assert v.token_ids is None and v.weights is None  # until bound to a tokenizer


def test_first_pooling_scores_each_word_by_its_first_sub_token(tokenizer):
    bpe = "roberta" in type(tokenizer).__name__.lower()
    v = Verbalizer(["x", "y"], {"x": ["horse and cat", "car"], "y": "bus"}, pooling="first").bind(tokenizer)
    first = tokenizer.encode((" " if bpe else "") + "horse and cat", add_special_tokens=False)[0]
    car = tokenizer.encode((" " if bpe else "") + "car", add_special_tokens=False)[0]
    bus = tokenizer.encode((" " if bpe else "") + "bus", add_special_tokens=False)[0]
    row = dict(zip(v.token_ids.tolist(), v.weights[0].tolist()))
    assert {t: w for t, w in row.items() if w} == ({first: 1.0} if first == car else {first: 0.5, car: 0.5})
    assert dict(zip(v.token_ids.tolist(), v.weights[1].tolist()))[bus] == 1.0
    assert v.token_ids.tolist() == sorted({first, car, bus}) and v.token_ids.dtype == torch.long


def test_the_too_short_refusal_counts_the_tokens_the_prompt_needs_without_its_text(tokenizer):
    tpl = Template("[T] The domain is [C]. The area is [A].")
    fields = {"text": "house house house"}
    text = len(tpl.text_ids(tokenizer, fields["text"]))
    needed = len(tpl.encode(tokenizer, fields, None, 200).input_ids) - text  # specials, literals and masks
    with pytest.raises(ValueError) as err:
        tpl.encode(tokenizer, fields, None, needed - 1)
    assert str(err.value) == (
        f"max_length={needed - 1} is too short for this prompt: the template, step and masks alone need {needed} tokens, "
        "and each text slot keeps at least one; shorten the step or raise max_length")
    with pytest.raises(ValueError, match=f"alone need {needed} tokens"):
        tpl.encode(tokenizer, fields, None, needed)  # room for the masks, none for the text
    assert len(tpl.encode(tokenizer, fields, None, needed + 1).input_ids) == needed + 1


def test_the_answer_is_read_after_the_special_tokens_or_from_the_first_token_without_an_answer_slot(tokenizer):
    first = Template("[A] is the area of [T] .").encode(tokenizer, {"text": "a cat"}, None, 64)
    assert first.answer_pos == 1 and first.input_ids[1] == tokenizer.mask_token_id
    none = Template("[T] The domain is [C] .").encode(tokenizer, {"text": "a cat"}, None, 64)
    assert none.answer_pos == 0 and none.input_ids[0] == tokenizer.cls_token_id
    assert none.step_pos == [none.input_ids.index(tokenizer.mask_token_id)]


def test_the_token_cache_stops_growing_at_100000_entries(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tpl = Template("[T] The domain is [C]. The area is [A].")
    tpl.encode(tok, {"text": "a cat"}, ["animal"], 64)
    tpl._cache.update({("pad", i): [] for i in range(100_000 - 1 - len(tpl._cache))})
    tpl.encode(tok, {"text": "a cat"}, ["red house"], 64)  # one below the bound: this step is kept
    assert len(tpl._cache) == 100_000 and (id(tok), "red house", True) in tpl._cache
    enc = tpl.encode(tok, {"text": "a cat"}, ["big car"], 64)  # at the bound: tokenized, not kept
    assert len(tpl._cache) == 100_000
    assert tok.decode(enc.input_ids).count("car") == 1 and "[UNK]" not in tok.decode(enc.input_ids)


def test_a_template_parses_into_its_pieces_and_fields():
    from cott.template import Piece

    tpl = Template("Text: [T] is [C][A]. [T:subj]")
    assert tpl.text == "Text: [T] is [C][A]. [T:subj]"
    assert tpl.pieces == [Piece("lit", "Text: "), Piece("T", "text", True), Piece("lit", " is "), Piece("C", "", True),
                          Piece("A", "", False), Piece("lit", ". "), Piece("T", "subj", True)]
    assert tpl.main == "text" and tpl.num_step_slots == 1 and tpl.fields() == {"text", "subj"}
    assert tpl.main_string("  a cat ") == " a cat"
    marked = Template('[T:marked] " [T:subj] " [A] " [T:obj] "')
    assert marked.pieces[0] == Piece("T", "marked", False) and marked.pieces[-1] == Piece("lit", ' "')
    assert marked.main == "marked" and marked.num_step_slots == 0 and marked.fields() == {"marked", "subj", "obj"}
    assert marked.main_string("  @ ada @ works ") == "@ ada @ works"
    assert Template("[T][C][C]").pieces == [Piece("T", "text"), Piece("C"), Piece("C")]
    assert Template("[T][C][C]").num_step_slots == 2
