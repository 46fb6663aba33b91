"""The typed checkpoint config: old cott.json files read unchanged, each default in one place, bad values refused."""
import dataclasses
import json
from types import MappingProxyType

import pytest

from cott.checkpoint import CheckpointError, read_config, update_config
from cott.config import ANSWER_MODE, MAX_LENGTH, CheckpointConfig
from helpers import ROOT, typed_config

SHIPPED = ["clinc150", "clinc150-following", "conll04"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_cott_json_reads_as_it_was_written(name):
    record = json.loads((ROOT / "assets" / name / "cott.json").read_text(encoding="utf-8"))
    config = read_config(ROOT / "assets" / name)
    for key in ("task", "kind", "method", "answer_mode", "max_length", "template", "backbone", "step_temperature",
                "out_of_scope", "calibration", "metrics", "training"):
        assert getattr(config, key) == record.get(key), key
    if "step_answers" not in record:  # CLINC150's table is its hierarchy, inverted
        assert all(a in config.step_answers[s] for a, s in record["hierarchy"].items())
    again = config.to_json()
    assert {k: again[k] for k in record} == record and CheckpointConfig.from_json(again) == config  # nothing lost


def test_a_record_with_only_the_required_keys_takes_the_defaults():
    config = typed_config()
    assert (config.max_length, config.answer_mode) == (MAX_LENGTH, ANSWER_MODE) == (128, "rectified")
    assert config.kind == "classification" and config.step_temperature == 1.0 and config.proj_dim == 128
    assert config.soft_verbalizer is False and config.step_answers == {} and config.out_of_scope is None
    assert config.training == {} and config.metrics == {} and config.step_verbalizer is None
    nulls = typed_config(training=None, metrics=None, step_answers=None)  # null in an old record: empty
    assert (nulls.training, nulls.metrics, nulls.step_answers) == ({}, {}, {})
    assert typed_config(note="kept").to_json()["note"] == "kept"  # a key this library does not know is kept


def test_to_json_writes_every_table_as_plain_dicts_of_its_own():
    """A table given as any mapping (here read-only views) comes back from to_json as plain dicts, nested ones too:
    json can write them, and changing the record leaves the frozen config as it was."""
    training = MappingProxyType({"lr": 1e-5, "command": MappingProxyType({"seed": 1})})
    config = typed_config(training=training, calibration=MappingProxyType({"step_temperature": 1.5}))
    record = config.to_json()
    assert type(record["training"]) is dict and type(record["training"]["command"]) is dict
    assert type(record["calibration"]) is dict
    assert json.loads(json.dumps(record))["training"] == {"lr": 1e-5, "command": {"seed": 1}}
    record["training"]["command"]["seed"] = 2
    assert config.training["command"]["seed"] == 1


def test_a_whole_step_temperature_is_read_and_written_as_a_float():
    config = typed_config(step_temperature=2)
    assert type(config.step_temperature) is float and config.step_temperature == 2.0
    assert json.dumps(config.to_json()["step_temperature"]) == "2.0"


def test_the_step_answer_table_is_recorded_or_the_hierarchy_inverted():
    inverted = typed_config(hierarchy={"dog": "animal", "cat": "animal", "bus": "vehicle"})
    assert inverted.step_answers == {"animal": ["cat", "dog"], "vehicle": ["bus"]}
    recorded = typed_config(hierarchy={"dog": "animal"}, step_answers={"Peop | Org": ["no_relation", "Work_For"]})
    assert recorded.step_answers == {"Peop | Org": ["Work_For", "no_relation"]}


def test_the_config_is_frozen():
    config = typed_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_length = 64
    assert dataclasses.replace(config, max_length=64).max_length == 64 and config.max_length == 128
    with pytest.raises(ValueError, match="answer_mode must be one of"):
        dataclasses.replace(config, answer_mode="best")  # a changed copy is checked as a read one is


@pytest.mark.parametrize("key,value,message", [
    ("answer_mode", "best", "answer_mode must be one of direct, step2, rectified, marginal, not 'best'"),
    ("kind", "ner", "kind must be one of classification, relation, not 'ner'"),
    ("max_length", 0, "max_length must be a positive whole number, not 0"),
    ("max_length", "64", "max_length must be a positive whole number, not '64'"),
    ("step_temperature", -1, "step_temperature must be a positive number, not -1"),
    ("step_temperature", float("inf"), "step_temperature must be a positive number, not inf"),
    ("step_temperature", True, "step_temperature must be a positive number, not True"),
])
def test_bad_values_are_refused_naming_the_key(key, value, message):
    with pytest.raises(ValueError) as err:
        typed_config(**{key: value})
    assert str(err.value) == message


def test_update_config_refuses_a_change_that_would_break_the_checkpoint(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    record = typed_config().to_json() | {"format": "cott-checkpoint", "version": 1}
    (folder / "cott.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="answer_mode must be one of"):
        update_config(folder, answer_mode="best")
    assert json.loads((folder / "cott.json").read_text()) == record  # the file is as it was
    assert update_config(folder, answer_mode="step2").answer_mode == read_config(folder).answer_mode == "step2"
    (folder / "cott.json").write_text(json.dumps(record | {"max_length": -3}))
    with pytest.raises(CheckpointError, match=r"cott\.json: max_length must be a positive whole number, not -3$"):
        read_config(folder)
