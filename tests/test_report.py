"""The results report: table rows from results records, plots, and the README block it rewrites."""
from experiments.report import plots, table, update_readme


def _record(config, seed, acc, step2=None):
    test = {"answer": {"accuracy": acc}, "accuracy_at_coverage": {"0.90": acc + 0.01, "0.80": acc + 0.02}}
    if step2 is not None:
        test |= {"step2": {"accuracy": step2}, "step_accuracy": 0.9, "step_sensitivity": 0.2,
                 "coverage_curve": [[0.5, acc + 0.05], [1.0, acc]]}
    return {"task": "clinc150", "budget": "tiny", "config": config, "seed": seed, "wall_seconds": 10.0, "test": test}


RECORDS = [_record("prompt", 0, 0.50), _record("prompt", 1, 0.60),
           _record("cott", 0, 0.70, step2=0.40), _record("cott", 1, 0.80, step2=0.60)]


def test_table_averages_seeds_and_reads_cott_through_step_two_too():
    rows = {line.split(" | ")[2]: line for line in table(RECORDS).splitlines()[2:]}
    assert set(rows) == {"prompt", "cott", "cott w/o rectification"}
    assert "| 2 | 55.0 ± 7.1 |" in rows["prompt"]
    assert "| 2 | 75.0 ± 7.1 | 90.0 |" in rows["cott"]
    assert "| 2 | 50.0 ± 14.1 | 90.0 | – |" in rows["cott w/o rectification"]


def test_plots_and_readme_block(tmp_path):
    files = plots(RECORDS, tmp_path)
    assert sorted(f.name for f in files) == ["clinc150_tiny_coverage.png", "clinc150_tiny_methods.png"]
    assert all(f.stat().st_size > 1000 for f in files)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nafter\n")
    update_readme(readme, "NEW TABLE", files)
    text = readme.read_text()
    assert "old" not in text and "NEW TABLE" in text and text.startswith("intro") and text.endswith("after\n")


def test_relation_runs_are_scored_by_f1_whatever_the_task_name():
    run = {"task": "my_relations", "budget": "tiny", "config": "prompt", "seed": 0, "wall_seconds": 1.0,
           "test": {"answer": {"accuracy": 0.9, "precision": 0.5, "recall": 0.3, "f1": 0.375}}}
    row = table([run]).splitlines()[2]
    assert "| 1 | 37.5 ± 0.0 |" in row


def test_a_config_the_report_does_not_know_still_gets_its_row_last():
    rows = [line.split(" | ")[2] for line in table(RECORDS + [_record("my new idea", 0, 0.9)]).splitlines()[2:]]
    assert rows == ["prompt", "cott", "cott w/o rectification", "my new idea"]


def test_a_resumed_run_without_wall_time_is_left_out_of_the_mean_and_marked():
    resumed = _record("prompt", 2, 0.70) | {"wall_seconds": None, "resumed_at_step": 5}
    lines = table(RECORDS + [resumed]).splitlines()
    prompt = next(line for line in lines if line.split(" | ")[2:3] == ["prompt"])
    assert prompt.endswith("| 10 † |") and "| 3 | 60.0 ± 10.0 |" in prompt
    assert lines[-1].startswith("† mean over the runs with a known wall time")
    assert "†" not in table(RECORDS)
