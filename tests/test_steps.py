"""One step type: the same spellings everywhere (labels or words, any case and spacing), one wording shown, and one
choice of the distribution an answer mode answers from."""
from dataclasses import replace

import pytest
import torch

from cott import CoTTPipeline
from cott.steps import MODES, final_distribution, join, normalise, split
from cott_demo import experiment as exp
from cott_demo.inputs import InputError
from helpers import ROOT


def _shipped(name):
    path = ROOT / "assets" / name
    if not (path / "cott.json").exists():
        pytest.skip(f"no shipped checkpoint at {path}")
    return CoTTPipeline.from_pretrained(str(path), device="cpu")


@pytest.fixture(scope="module")
def clinc():
    return _shipped("clinc150")


@pytest.fixture(scope="module")
def conll():
    return _shipped("conll04")


def test_join_split_and_normalise():
    assert join(("Peop", "Org")) == "Peop | Org" and split(" Peop|  Org ") == ("Peop", "Org") == split(["Peop", "Org"])
    assert normalise("  Credit   Cards ") == "credit cards" and normalise("PERSON|organization ") == "person | organization"


@pytest.mark.parametrize("name", ["clinc", "conll"])
def test_every_known_step_round_trips_label_words_label(name, request):
    space = request.getfixturevalue(name).step_space
    assert len(space) == len(space.names) == len(space.shown) == len(set(space.names)) > 1
    for label, words in zip(space.names, space.shown):
        assert space.display(label) == words and space.label(words) == label == space.label(label)
        assert space.label(f"  {words.upper()}  ".replace(" | ", "|")) == label  # any case, any spacing
        assert space.parse(words) == (label, tuple(split(words)))  # the words written into [C]
    assert "credit cards" in request.getfixturevalue("clinc").step_space.shown  # words, not credit_cards


def test_the_same_spellings_reach_the_same_step_in_the_library_and_every_tab(conll, tmp_path):
    text = "[[Ada]] works for {{Acme}}."
    spellings = ["Peop | Org", "person | organization", "  PERSON|Organization ", "peop|org"]
    preds = [conll(text, step=s) for s in spellings]
    assert {p.step for p in preds} == {"Peop | Org"} and {p.step_words for p in preds} == {"person | organization"}
    assert all(p.p_answer_step == preds[0].p_answer_step and p.step_prob is not None for p in preds)
    # Ask, Edit the step and Compare send the step as typed to the pipeline; the Experiment tab reads it here
    rows = [{"text": text, "step": s, "label": None, "subj": None, "obj": None} for s in spellings]
    assert exp.make_plan(conll, rows, "given").steps == ["Peop | Org"] * len(spellings)
    assert {exp.make_plan(conll, rows[:1], "fixed", s).steps for s in spellings} == {"Peop | Org"}
    assert {r.gold_step for r in conll.counterfactuals([text] * 4, "runner_up", gold_steps=spellings)} == {"Peop | Org"}


def test_free_text_only_where_the_model_allows_it(conll, tmp_path):
    text = "[[Ada]] works for {{Acme}}."
    free = conll(text, step="scientist | company")
    assert free.step == "scientist | company" and free.step_prob is None and free.injected
    rows = [{"text": text, "step": "scientist | company", "label": None, "subj": None, "obj": None}]
    with pytest.raises(InputError, match=r"not a step this model knows \(its steps: location \| location, "):
        exp.make_plan(conll, rows, "given")  # the known steps listed in words, as the app shows them
    with pytest.raises(ValueError, match="is not a step this model knows"):
        conll.counterfactuals([text], "runner_up", gold_steps=["scientist | company"])  # a gold step is a known one
    with pytest.raises(ValueError, match=r"has 2 part\(s\); got 1 non-empty part\(s\) \(separate them with '\|'\)"):
        conll(text, step="person")


def test_the_answer_modes_distribution_is_chosen_in_one_place():
    r = {k: torch.full((1, 2), float(i)) for i, k in enumerate(["p_answer", "p_answer_step", "p_rectified", "p_marginal"])}
    assert [int(final_distribution(r, m)[0, 0]) for m in MODES] == [0, 1, 2, 3]
    assert final_distribution({**r, "p_marginal": None}, "marginal") is r["p_rectified"]  # top-1: no marginal
    no_step = {"p_answer": r["p_answer"], "p_answer_step": None}
    assert all(final_distribution(no_step, m) is r["p_answer"] for m in MODES)  # a model that answers directly
    with pytest.raises(ValueError, match="unknown answer mode 'best'"):
        final_distribution(r, "best")


def test_a_prediction_says_which_distribution_its_answer_came_from(clinc):
    text = "how do i pay my credit card bill"
    own, injected = clinc(text), clinc(text, step="credit cards")
    assert (own.answer_mode, injected.answer_mode) == ("rectified", "step2")
    for pred in (own, injected):
        assert final_distribution(pred.to_dict(), pred.answer_mode) == pred.p_final
    marginal = CoTTPipeline(clinc.model, replace(clinc.config, answer_mode="marginal"))(text, top_k=3)
    assert marginal.answer_mode == "marginal" and marginal.p_final == marginal.p_marginal != marginal.p_rectified
