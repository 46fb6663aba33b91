"""Task declarations: an unknown name lists the known ones, a checkpoint's data is read with the columns it was
trained with, and the label sets and hierarchy come from the examples as they are."""
import json

import pytest

from cott.data import Example
from cott.tasks import TASKS, checkpoint_loader, get_task, hierarchy, label_sets, loader_of
from helpers import typed_config


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown task 'nope'; known tasks: clinc150, wos, conll04, tacred, jsonl"):
        get_task("nope")
    assert get_task("wos") is TASKS["wos"]


def _renamed(folder):
    """train.jsonl with the generic columns under other names: utterance, kind, intent."""
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"utterance": "a cat", "kind": "animal", "intent": "cat"}) + "\n")
    (folder / "plain.jsonl").write_text(json.dumps({"text": "a bus", "step": "vehicle", "label": "bus"}) + "\n")
    return folder


NAMES = {"text": "utterance", "step": "kind", "label": "intent"}


def test_a_loader_reads_the_columns_it_is_given(tmp_path):
    folder = _renamed(tmp_path / "data")
    task = get_task("jsonl")
    assert loader_of(task) is task.loader and loader_of(task, {}) is task.loader
    [example] = loader_of(task, NAMES)(folder / "train.jsonl", "train")
    assert example == Example({"text": "a cat"}, ("animal",), "cat")


def test_a_checkpoints_loader_reads_its_data_as_it_was_trained(tmp_path):
    folder = _renamed(tmp_path / "data")
    config = typed_config(task="jsonl", training={"columns": NAMES})
    assert [e.label for e in checkpoint_loader(config)(folder / "train.jsonl", "train")] == ["cat"]
    # columns given now replace the recorded ones; a task given now replaces the checkpoint's
    plain = {"text": "text", "step": "step", "label": "label"}
    assert [e.label for e in checkpoint_loader(config, plain)(folder / "plain.jsonl", "train")] == ["bus"]
    assert [e.label for e in checkpoint_loader(typed_config(task="jsonl"))(folder / "plain.jsonl", "train")] == ["bus"]
    (tmp_path / "wos_train.json").write_text(json.dumps({"doc_token": "t", "doc_label": ["CS", "ML"]}) + "\n")
    assert checkpoint_loader(typed_config(task="jsonl"), task="wos")(tmp_path, "train")[0].step == ("CS",)
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        checkpoint_loader(typed_config(task="nope"))


def test_label_sets_and_hierarchy_read_the_examples_as_they_are():
    examples = [Example({"text": "a"}, ("vehicle",), "bus"), Example({"text": "b"}, ("animal",), "cat"),
                Example({"text": "c"}, ("person", "organization"), "works_for"), Example({"text": "d"}, None, "dog"),
                Example({"text": "e"}, ("animal",), None), Example({"text": "f"}, (), "cow")]
    steps, answers = label_sets(examples)
    assert steps == ["animal", "organization", "person", "vehicle"]  # every slot's labels, sorted
    assert answers == ["bus", "cat", "cow", "dog", "works_for"]  # an unlabelled example adds no answer
    labelled = [e for e in examples if e.label is not None]
    assert hierarchy(labelled) == {"bus": "vehicle", "cat": "animal"}  # answers of single-slot steps only
