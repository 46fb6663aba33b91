"""The results report: table rows from results records, plots, and the results README block it rewrites."""
from experiments.report import direct_vs_answer, plots, table, update_readme
from experiments import report


def _record(config, seed, acc, step2=None, direct=None, mode="rectified"):
    test = {"answer": {"accuracy": acc}, "accuracy_at_coverage": {"0.90": acc + 0.01, "0.80": acc + 0.02}}
    if step2 is not None:
        test |= {"answer_mode": mode, "step2": {"accuracy": step2}, "direct": {"accuracy": direct},
                 "step_accuracy": 0.9, "step_sensitivity": 0.2, "coverage_curve": [[0.5, acc + 0.05], [1.0, acc]]}
    return {"task": "clinc150", "budget": "tiny", "config": config, "seed": seed, "wall_seconds": 10.0, "test": test}


RECORDS = [_record("prompt", 0, 0.50), _record("prompt", 1, 0.60),
           _record("cott", 0, 0.70, step2=0.40, direct=0.72), _record("cott", 1, 0.80, step2=0.60, direct=0.82)]


def _rows(records):
    return {line.split(" | ")[2]: line for line in table(records).splitlines()[2:] if line.startswith("|")}


def test_table_averages_seeds_and_reads_cott_directly_and_through_step_two_too():
    rows = _rows(RECORDS)
    assert set(rows) == {"prompt", "cott"}
    assert "| 2 | 55.0 ± 7.1 | – | – |" in rows["prompt"]  # a baseline has no second reading
    assert "n/a" not in rows["prompt"]
    # rectified answer, then the same models' direct p(y|x) and Step II p(y|x,Î), then step accuracy
    assert "| 2 | 75.0 ± 7.1 | 77.0 ± 7.1 | 50.0 ± 14.1 | 90.0 |" in rows["cott"]


def test_a_step_one_only_model_has_no_step_two_reading_nor_step_sensitivity():
    step1 = _record("cott Step I only", 0, 0.60, step2=0.30, direct=0.60, mode="direct")
    row = _rows([step1])["cott Step I only"]
    assert "| 1 | 60.0 ± 0.0 | 60.0 ± 0.0 | n/a | 90.0 |" in row
    assert "| 20.0 |" not in row and row.count("n/a") == 2


def test_step_sensitivity_of_the_answer_and_of_step_two_old_and_new_records():
    old = _rows(RECORDS)["cott"]  # recorded before the final answer's sensitivity was measured: Step II's only
    assert old.endswith("| – | 20.0 | – | 10 |")
    new = _record("cott", 0, 0.70, step2=0.40, direct=0.72)
    new["test"] |= {"step_sensitivity": 0.3, "step2_sensitivity": 0.25}
    assert _rows([new])["cott"].endswith("| 30.0 | 25.0 | – | 10 |")
    step1 = _record("cott Step I only", 0, 0.60, step2=0.30, direct=0.60, mode="direct")
    step1["test"] |= {"step_sensitivity": None, "step2_sensitivity": 0.1}
    assert _rows([step1])["cott Step I only"].endswith("| n/a | n/a | – | 10 |")


def test_direct_against_answer_is_counted_over_two_step_rows():
    assert direct_vs_answer(RECORDS).startswith("In 1 of the 1 rows")


def test_plots_and_results_readme_block(tmp_path):
    files = plots(RECORDS, tmp_path)
    assert sorted(f.name for f in files) == ["clinc150_tiny_coverage.png", "clinc150_tiny_methods.png"]
    assert all(f.stat().st_size > 1000 for f in files)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nafter\n")
    update_readme(readme, "NEW TABLE", files)
    text = readme.read_text()
    assert "old" not in text and "NEW TABLE" in text and text.startswith("intro") and text.endswith("after\n")
    assert "(clinc150_tiny_methods.png)" in text  # linked relative to the README's folder


def test_a_missing_results_readme_is_started_with_the_block(tmp_path):
    readme = tmp_path / "results" / "README.md"
    readme.parent.mkdir()
    update_readme(readme, "NEW TABLE", [tmp_path / "results" / "x.png"])
    text = readme.read_text()
    assert text.startswith("# Results") and "NEW TABLE" in text and "(x.png)" in text


def test_relation_runs_are_scored_by_f1_whatever_the_task_name():
    run = {"task": "my_relations", "budget": "tiny", "config": "prompt", "seed": 0, "wall_seconds": 1.0,
           "test": {"answer": {"accuracy": 0.9, "precision": 0.5, "recall": 0.3, "f1": 0.375}}}
    row = table([run]).splitlines()[2]
    assert "| 1 | 37.5 ± 0.0 |" in row


def test_a_config_the_report_does_not_know_still_gets_its_row_last():
    rows = [line.split(" | ")[2] for line in table(RECORDS + [_record("my new idea", 0, 0.9)]).splitlines()[2:]]
    assert rows == ["prompt", "cott", "my new idea"]


def test_a_resumed_run_without_wall_time_is_left_out_of_the_mean_and_marked():
    resumed = _record("prompt", 2, 0.70) | {"wall_seconds": None, "resumed_at_iteration": 5}
    lines = table(RECORDS + [resumed]).splitlines()
    prompt = next(line for line in lines if line.split(" | ")[2:3] == ["prompt"])
    assert prompt.endswith("| 10 † |") and "| 3 | 60.0 ± 10.0 |" in prompt
    assert lines[-1].startswith("† mean over the runs with a known wall time")
    assert "†" not in table(RECORDS)


def test_following_table_and_curve_read_experiments_following_records(tmp_path):
    def rec(config, seed, follows, score):
        test = {"answer": {"accuracy": score}, "direct": {"accuracy": score}, "step2": {"accuracy": score},
                "answer_mode": "rectified", "following_rate": follows, "step_sensitivity": 0.5,
                "accuracy_at_coverage": {"0.90": 0.9}, "oracle": {"gold_step_injected": 0.97},
                "random_wrong": {"following_rate": follows, "flip_rate": follows},
                "runner_up": {"following_rate": follows / 2, "flip_rate": 0.1}}
        return {"task": "clinc150", "budget": "b", "config": config, "seed": seed, "test": test}

    base = report.BASE_COTT
    records = [rec(base, 0, 0.3, 0.96), rec(base, 1, 0.5, 0.94), rec(base + " + step-following", 0, 1.0, 0.9),
               {"task": "clinc150", "budget": "b", "config": "finetune", "seed": 0, "test": {"answer": {"accuracy": 0.5}}}]
    lines = report.following_table(records).splitlines()
    assert len(lines) == 4 and "finetune" not in "".join(lines)  # a run without injections has no row
    assert "no_relation" not in lines[0] and "out-of-scope" not in lines[0]  # columns no run has are left out
    assert lines[2].startswith(f"| clinc150 | b | {base} | 2 | 95.0 ± 1.4 |") and "| 40.0 ± 14.1 | 40.0 ± 14.1 | 20.0 ± 7.1 |" in lines[2]
    assert report.following_table(records[3:]) == ""
    files = report.following_curve(records, tmp_path)
    assert [f.name for f in files] == ["clinc150_b_following.png"] and files[0].stat().st_size > 0
