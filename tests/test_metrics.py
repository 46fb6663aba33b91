"""Relation scores: TACRED-style micro figures and the per-relation breakdown."""
from cott.metrics import relation_scores, relation_scores_per_label


def test_per_relation_scores_split_the_micro_figures_by_relation():
    gold = ["Kill", "Kill", "Live_In", "no_relation", "no_relation", "Work_For"]
    pred = ["Kill", "Live_In", "Live_In", "Kill", "no_relation", "no_relation"]
    per = relation_scores_per_label(gold, pred)
    assert set(per) == {"Kill", "Live_In", "Work_For"}  # never no_relation
    assert per["Kill"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per["Live_In"]["precision"] == 0.5 and per["Live_In"]["recall"] == 1.0
    assert per["Work_For"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    micro = relation_scores(gold, pred)
    assert sum(s["support"] for s in per.values()) == 4
    assert micro["precision"] == 2 / 4 and micro["recall"] == 2 / 4
