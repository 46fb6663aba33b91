"""The experiment grid: one record per (seed, config), and --resume skips recorded runs and continues interrupted ones."""
import json
import shlex

import pytest

from experiments import grid
from train.cli import main as real_train_main

CONFIGS = {"prompt": ["--method", "prompt", "--mlm-warmup-steps", "0"],
           "cott": ["--method", "cott", "--mlm-warmup-steps", "0"]}


@pytest.fixture
def run_grid(tiny_bert, toy_data, tmp_path, monkeypatch):
    """Run the grid on the toy data with the tiny model (3 steps a run); returns the records of the results file."""
    monkeypatch.setattr(grid, "CONFIGS", CONFIGS)
    budget = f"--model {tiny_bert} --epochs 1 --batch-size 16 --max-length 48 --max-train-examples 48"

    def run(*extra, seeds=("0",), configs=("prompt", "cott"), root=tmp_path, budget=budget):
        grid.main(["--task", "jsonl", "--data", str(toy_data), "--seeds", *seeds, "--configs", *configs,
                   "--budget", budget, "--results", str(root / "results.jsonl"), "--runs", str(root / "runs"), *extra])
        lines = (root / "results.jsonl").read_text().splitlines() if (root / "results.jsonl").exists() else []
        return [json.loads(line) for line in lines]
    return run


@pytest.fixture
def calls(monkeypatch):
    """Replace training by a stub that returns fixed scores; the list holds the argv of each call."""
    seen = []

    def fake(argv):
        seen.append(argv)
        return {"best_val": 0.5, "test": {"answer": {"accuracy": 0.5}}}
    monkeypatch.setattr(grid, "train_main", fake)
    return seen


def test_a_fresh_grid_records_one_run_per_seed_and_config(run_grid, calls):
    records = run_grid(seeds=("0", "1"))
    assert [(r["seed"], r["config"]) for r in records] == [(0, "prompt"), (0, "cott"), (1, "prompt"), (1, "cott")]
    assert all(isinstance(r["wall_seconds"], float) and "resumed_at_iteration" not in r for r in records)
    assert all("--resume" not in argv for argv in calls)
    assert all(r["device"] == grid.device() and r["device"].startswith(("cpu (", "NVIDIA")) for r in records)
    assert [r["command"] for r in records] == ["python -m train " + shlex.join(argv) for argv in calls]


def test_resume_skips_the_runs_already_recorded_and_trains_the_rest(run_grid, calls, capsys):
    run_grid()
    run_grid("--resume", seeds=("0", "1"))
    assert [argv[argv.index("--seed") + 1] for argv in calls] == ["0", "0", "1", "1"]
    records = run_grid("--resume", seeds=("0", "1"))
    assert len(calls) == 4 and len(records) == 4  # nothing trained, nothing appended
    assert capsys.readouterr().err.count("skipping") == 2 + 4
    records = run_grid("--resume", budget="--epochs 2")  # another budget is another run
    assert len(calls) == 6 and len(records) == 6


def test_without_resume_a_saved_state_is_ignored_and_a_recorded_run_trains_again(run_grid, calls, tmp_path):
    state = tmp_path / "runs" / "jsonl-prompt-seed0" / "state"
    state.mkdir(parents=True)
    (state / "state.json").write_text(json.dumps({"info": {"step": 2}}))
    run_grid(configs=("prompt",))
    records = run_grid(configs=("prompt",))
    assert len(calls) == 2 and all("--resume" not in argv for argv in calls)
    assert len(records) == 2 and all(isinstance(r["wall_seconds"], float) for r in records)


def test_an_interrupted_run_resumes_from_its_state_to_the_record_of_an_uninterrupted_one(run_grid, tmp_path, monkeypatch):
    [straight] = run_grid(configs=("cott",), root=tmp_path / "straight")  # real training, 3 steps
    assert isinstance(straight["wall_seconds"], float) and straight["test"]["answer"]

    def killed(argv):  # the environment restarts after step 2
        real_train_main(argv + ["--stop-after-steps", "2"])
        raise KeyboardInterrupt
    monkeypatch.setattr(grid, "train_main", killed)
    with pytest.raises(KeyboardInterrupt):
        run_grid(configs=("cott",))
    assert not (tmp_path / "results.jsonl").exists()

    seen = []
    monkeypatch.setattr(grid, "train_main", lambda argv: seen.append(argv) or real_train_main(argv))
    [resumed] = run_grid("--resume", configs=("cott",))
    [argv] = seen
    assert argv[-1] == "--resume" and resumed["command"] == "python -m train " + shlex.join(argv[:-1])
    assert resumed["wall_seconds"] is None and resumed["resumed_at_iteration"] == 2
    assert isinstance(resumed["wall_seconds_after_resume"], float)
    assert resumed["best_val"] == pytest.approx(straight["best_val"])
    assert resumed["test"]["answer"] == pytest.approx(straight["test"]["answer"])


def test_resume_refuses_a_results_file_that_is_not_json_lines(run_grid, calls, tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text('{"task": "jsonl"}\nnot json\n')
    with pytest.raises(SystemExit):
        run_grid("--resume")
    assert "line 2" in capsys.readouterr().err and not calls
