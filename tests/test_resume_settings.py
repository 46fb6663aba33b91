"""Which saved training states ``--resume`` continues: the same settings, older states, and the refusals' words;
the progress a state records and reads back (older key names included)."""
import json
import re

import pytest

from train.state import STATE_JSON, Progress, check_resumable

DEFAULTS = {"lr": 1e-3, "tau": 0.1, "step_loss_weight": 1.0}


def _state(tmp_path, info):
    (tmp_path / STATE_JSON).write_text(json.dumps(info), encoding="utf-8")
    return tmp_path


def test_a_state_saved_with_the_same_settings_is_continued(tmp_path):
    path = _state(tmp_path, {"info": {"iteration": 4, "run": dict(DEFAULTS)}})
    assert check_resumable(path, dict(DEFAULTS), DEFAULTS.get) is None


def test_a_state_saved_before_states_stored_settings_is_continued_under_any(tmp_path):
    path = _state(tmp_path, {"info": {"iteration": 4}})
    check_resumable(path, {"lr": 5.0, "tau": 9.0}, DEFAULTS.get)


def test_a_flag_the_state_predates_passes_at_its_default_only(tmp_path):
    path = _state(tmp_path, {"info": {"run": {"lr": 1e-3, "tau": 0.1}}})
    check_resumable(path, dict(DEFAULTS), DEFAULTS.get)  # step_loss_weight at its default
    with pytest.raises(ValueError) as err:
        check_resumable(path, DEFAULTS | {"step_loss_weight": 2.0}, DEFAULTS.get)
    assert "(--step-loss-weight 1.0 -> 2.0)" in str(err.value)


def test_other_settings_are_refused_each_named_in_order_with_both_values(tmp_path):
    path = _state(tmp_path, {"info": {"run": DEFAULTS | {"gone_flag": "x"}}})
    with pytest.raises(ValueError) as err:
        check_resumable(path, DEFAULTS | {"tau": 0.5, "lr": 1e-4}, DEFAULTS.get)
    assert str(err.value) == (
        f"--resume: the state in {path} was saved by a run with other settings "
        "(--gone-flag 'x' -> None, --lr 0.001 -> 0.0001, --tau 0.1 -> 0.5); "
        "resume with the same flags, or train into a new --output-dir")


@pytest.mark.parametrize("text, error", [("{truncated", "JSONDecodeError"), ('{"iteration": 4}', "KeyError"),
                                         ('{"info": [1, 2]}', "AttributeError")])
def test_a_file_that_is_no_training_state_is_refused_with_what_to_do(tmp_path, text, error):
    (tmp_path / STATE_JSON).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        check_resumable(tmp_path, dict(DEFAULTS), DEFAULTS.get)
    message = str(err.value)
    assert message.startswith(f"--resume: {tmp_path / STATE_JSON} is not a training state ({error}(")
    assert message.endswith(f"); remove {tmp_path} to train from the start")
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_non_ascii_setting_is_read_back_as_utf8(tmp_path):
    path = tmp_path / STATE_JSON
    path.write_bytes(json.dumps({"info": {"run": {"template": "Étape → {x}"}}}, ensure_ascii=False).encode("utf-8"))
    check_resumable(tmp_path, {"template": "Étape → {x}"}, DEFAULTS.get)


def test_a_non_ascii_setting_is_read_back_under_a_plain_ascii_locale_too(tmp_path, monkeypatch):
    """state.json is written as UTF-8 whatever the locale: it is read as UTF-8, not in the locale's encoding (here an
    ASCII one, as under LC_ALL=C, simulated in-process)."""
    from pathlib import Path
    read_text = Path.read_text

    def in_ascii_locale(self, encoding=None, errors=None):
        return read_text(self, encoding=encoding or "ascii", errors=errors)

    (tmp_path / STATE_JSON).write_bytes(json.dumps({"info": {"run": {"template": "Étape"}}},
                                                   ensure_ascii=False).encode("utf-8"))
    monkeypatch.setattr(Path, "read_text", in_ascii_locale)
    check_resumable(tmp_path, {"template": "Étape"}, DEFAULTS.get)


def test_progress_records_the_best_score_and_when_only_on_improvement(caplog):
    progress = Progress()
    assert (progress.iteration, progress.best, progress.best_iteration, progress.history) == (0, -1.0, 0, [])
    caplog.set_level("INFO", logger="train.state")
    progress.iteration = 6
    assert progress.record(0.5) is True
    progress.iteration = 12
    assert progress.record(0.5) is False  # a tie is no improvement: best/ keeps the earlier checkpoint
    progress.iteration = 18
    assert progress.record(0.25) is False
    assert (progress.best, progress.best_iteration) == (0.5, 6)
    assert progress.history == [(6, 0.5), (12, 0.5), (18, 0.25)]
    assert caplog.messages == ["iteration 6: val 0.5000 (best 0.5000 at iteration 6)",
                               "iteration 12: val 0.5000 (best 0.5000 at iteration 6)",
                               "iteration 18: val 0.2500 (best 0.5000 at iteration 6)"]


def test_progress_round_trips_through_json_and_reads_older_step_keys():
    progress = Progress(12, 0.75, 6, [(6, 0.75), (12, 0.5)])
    info = progress.to_json()
    assert info == {"iteration": 12, "best": 0.75, "best_iteration": 6,
                    "history": [{"iteration": 6, "val": 0.75}, {"iteration": 12, "val": 0.5}]}
    assert Progress.from_json(json.loads(json.dumps(info))) == progress
    old = {"step": 12, "best": 0.75, "best_step": 6, "history": [{"step": 6, "val": 0.75}, {"step": 12, "val": 0.5}]}
    assert Progress.from_json(old) == progress


def test_a_runs_state_lives_in_state_under_its_output_folder(tmp_path):
    from train.state import state_folder
    assert state_folder(str(tmp_path)) == tmp_path / "state"


def test_run_settings_keep_the_flags_that_shape_training_as_json_reads_them():
    from argparse import Namespace
    from train.state import RESUMABLE, run_settings
    args = Namespace(lr=1e-3, columns=("a", "b"), **{k: 1 for k in RESUMABLE})
    assert run_settings(args) == {"lr": 1e-3, "columns": ["a", "b"]}
