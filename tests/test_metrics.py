"""The metrics of docs/METHOD.md on hand-made cases where each plausible mistake gives another number."""
import pytest

from cott.metrics import (accuracy_at_coverage, classification_scores, coverage_curve, inconsistency_rate,
                          relation_scores, relation_scores_per_label, step_sensitivity)

# ---- relations: TACRED-style micro P/R/F1 without no_relation -------------------------------------------------


def test_relation_precision_and_recall_differ_and_are_not_swapped():
    gold = ["Kill", "Kill", "Live_In", "no_relation", "no_relation"]
    pred = ["Kill", "no_relation", "no_relation", "Live_In", "no_relation"]
    # correct non-negative: 1 (the first Kill); guessed non-negative: 2; gold non-negative: 3
    scores = relation_scores(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 2) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert scores["accuracy"] == pytest.approx(2 / 5)  # an agreed no_relation counts for accuracy only


def test_relation_scores_never_credit_no_relation_and_take_another_negative_label():
    assert relation_scores(["no_relation"] * 3, ["no_relation"] * 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0}
    assert relation_scores([], []) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0}
    gold, pred = ["A", "none", "B", "B"], ["A", "B", "none", "B"]
    assert relation_scores(gold, pred, negative="none") == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "accuracy": 0.5})
    # with the default negative, "none" is a relation like any other: 2 right of 4 guessed, of 4 gold
    assert relation_scores(gold, pred)["precision"] == pytest.approx(0.5)
    only_guessed = relation_scores(["no_relation", "A"], ["B", "no_relation"])
    assert only_guessed["precision"] == 0.0 and only_guessed["recall"] == 0.0 and only_guessed["f1"] == 0.0


def test_per_relation_scores_split_the_micro_figures_by_relation():
    gold = ["Kill", "Kill", "Live_In", "no_relation", "no_relation", "Work_For"]
    pred = ["Kill", "Live_In", "Live_In", "Kill", "no_relation", "no_relation"]
    per = relation_scores_per_label(gold, pred)
    assert set(per) == {"Kill", "Live_In", "Work_For"}  # never no_relation
    assert per["Kill"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per["Live_In"]["precision"] == 0.5 and per["Live_In"]["recall"] == 1.0
    assert per["Live_In"]["f1"] == pytest.approx(2 / 3) and per["Live_In"]["support"] == 1
    assert per["Work_For"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    micro = relation_scores(gold, pred)
    assert sum(s["support"] for s in per.values()) == 4
    assert micro["precision"] == 2 / 4 and micro["recall"] == 2 / 4
    assert set(relation_scores_per_label(["x", "y"], ["y", "y"], negative="x")) == {"y"}


def test_per_relation_scores_count_each_relation_on_its_own():
    gold = ["A", "A", "A", "B", "no_relation"]
    pred = ["A", "A", "B", "B", "A"]
    per = relation_scores_per_label(gold, pred)
    # A: 2 right of 3 guessed, of 3 gold; B: 1 right of 2 guessed, of 1 gold
    assert per["A"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert per["B"] == pytest.approx({"precision": 1 / 2, "recall": 1.0, "f1": 2 / 3, "support": 1})


# ---- classification: accuracy, micro-F1, macro-F1 over the labels that occur -----------------------------------


def test_macro_f1_averages_over_labels_in_gold_or_predictions_only():
    gold, pred = [0, 0, 1, 2, 2], [0, 1, 1, 0, 3]
    # label 0: tp 1 fp 1 fn 1 -> 1/2; label 1: tp 1 fp 1 fn 0 -> 2/3; label 2: tp 0 fn 2 -> 0; label 3 (only
    # predicted): fp 1 -> 0; labels 4..9 occur nowhere and are not averaged in
    scores = classification_scores(gold, pred, num_labels=10)
    assert scores["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 0 + 0) / 4)
    assert scores["accuracy"] == pytest.approx(2 / 5) and scores["micro_f1"] == pytest.approx(2 / 5)
    # a label as often predicted wrongly as missed (tp 0, fp 1, fn 1) still counts, with F1 0
    assert classification_scores([0, 4, 5], [0, 5, 4], num_labels=6)["macro_f1"] == pytest.approx(1 / 3)
    assert classification_scores([1, 1], [1, 1], num_labels=3) == {"accuracy": 1.0, "micro_f1": 1.0, "macro_f1": 1.0}
    assert classification_scores([], [], num_labels=3) == {"accuracy": 0.0, "micro_f1": 0.0, "macro_f1": 0.0}


# ---- the reasoning monitor ------------------------------------------------------------------------------------


def test_accuracy_at_coverage_keeps_the_most_confident_inputs():
    correct = [False, True, True, False, True, False, True, True, False, True]
    confidence = [0.10, 0.95, 0.90, 0.20, 0.85, 0.30, 0.80, 0.50, 0.40, 0.60]
    # by confidence: T(.95) T(.90) T(.85) T(.80) T(.60) T(.50) F(.40) F(.30) F(.20) F(.10)
    got = accuracy_at_coverage(correct, confidence, coverages=(1.0, 0.8, 0.6, 0.5, 0.3, 0.04))
    assert got == pytest.approx({"1.00": 0.6, "0.80": 6 / 8, "0.60": 1.0, "0.50": 1.0, "0.30": 1.0, "0.04": 1.0})
    # the least confident kept instead: a reversed order would give these
    worst = accuracy_at_coverage(correct, [-c for c in confidence], coverages=(0.5,))
    assert worst == {"0.50": pytest.approx(1 / 5)}
    assert accuracy_at_coverage([], [], coverages=(0.5,)) == {"0.50": 0.0}


def test_accuracy_at_coverage_rounds_the_count_and_breaks_ties_by_input_order():
    correct = [True, False, False, True]
    assert accuracy_at_coverage(correct, [0.5, 0.5, 0.5, 0.5], coverages=(0.25, 0.5, 0.75)) == pytest.approx(
        {"0.25": 1.0, "0.50": 0.5, "0.75": 1 / 3})
    # 0.9 of 4 inputs is 3.6, kept as 4; 0.6 of 4 is 2.4, kept as 2
    confidence = [0.9, 0.8, 0.7, 0.1]
    assert accuracy_at_coverage(correct, confidence, coverages=(0.9, 0.6)) == pytest.approx({"0.90": 0.5, "0.60": 0.5})
    assert accuracy_at_coverage([False, True], [0.2, 0.9], coverages=(0.1,)) == {"0.10": 1.0}  # never fewer than one


def test_accuracy_at_coverage_breaks_ties_by_input_order_in_a_long_list():
    """Three confidence levels over 100 inputs: which tied inputs are kept must not depend on the sort algorithm."""
    import random

    rng = random.Random(0)
    confidence = [rng.choice([0.1, 0.5, 0.9]) for _ in range(100)]
    correct = [i % 3 == 0 for i in range(100)]
    order = sorted(range(100), key=lambda i: -confidence[i])  # Python's sort is stable
    coverages = (0.05, 0.15, 0.25, 0.45, 0.55, 0.65, 0.85)
    want = {f"{c:.2f}": sum(correct[i] for i in order[: round(c * 100)]) / round(c * 100) for c in coverages}
    assert accuracy_at_coverage(correct, confidence, coverages) == pytest.approx(want)


def test_coverage_curve_is_accuracy_at_each_coverage_step():
    correct = [True, True, False, False]
    confidence = [0.9, 0.8, 0.7, 0.6]
    curve = coverage_curve(correct, confidence, points=4)
    assert [c for c, _ in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [a for _, a in curve] == pytest.approx([1.0, 1.0, 2 / 3, 0.5])
    default = coverage_curve(correct, confidence)
    assert len(default) == 20 and default[0][0] == 0.05 and default[-1] == (1.0, 0.5)


def test_step_sensitivity_is_the_share_of_changed_answers():
    assert step_sensitivity([1, 2, 3, 4], [1, 0, 3, 0]) == 0.5
    assert step_sensitivity([1, 2, 3, 4], [1, 2, 3, 0]) == 0.25  # a step the model ignores scores low
    assert step_sensitivity([5, 5], [5, 5]) == 0.0 and step_sensitivity([], []) == 0.0


def test_inconsistency_rate_counts_answers_outside_the_predicted_step():
    parent = {"cat": "animal", "dog": "animal", "bus": "vehicle"}
    answers = ["cat", "bus", "dog", "bus", "unknown"]
    steps = ["animal", "animal", "vehicle", "vehicle", "animal"]
    # "unknown" has no parent and is left out: 2 of the 4 others disagree with their step
    assert inconsistency_rate(answers, steps, parent) == 0.5
    assert inconsistency_rate(["cat"], ["animal"], parent) == 0.0
    assert inconsistency_rate(["unknown"], ["animal"], parent) == 0.0
