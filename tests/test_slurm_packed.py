"""runbatch --slurm --runs-per-task: many short runs per array task, on the local cluster with real training.
Ten runs packed five per task finish in two tasks, warm; a packed task warned in its third run resumes that
run exactly and then runs the rest, skipping the finished ones."""
import json
import os

import pytest

from conftest import tool
from helpers.grids import train_grid
from helpers.same_run import assert_same_run
from runkit.rundir import runs
from slurm_cluster import slurm_cluster, squeue_state, wait_until, warn_and_restart  # noqa: F401 - fixture


def specs(tmp_path, name, seeds, config="digits_mlp.gin", **fixed):
    path = train_grid(tmp_path / f"{name}.yaml", "digits", fixed, {"training_loop.seed": list(seeds)}, config=config)
    return [json.loads(line) for line in tool("gridgen", path, check=0).stdout.splitlines()]


def renamed(s, name):
    """The spec s as another run: its own name and folder."""
    run_dir = os.path.join(os.path.dirname(s["run_dir"]), name)
    return dict(s, name=name, run_dir=run_dir, argv=[run_dir if a == s["run_dir"] else a for a in s["argv"]])


def lines(specs):
    return "".join(json.dumps(s) + "\n" for s in specs)


def test_dry_run_packs_k_runs_per_task_and_one_per_task_is_unchanged(results_dir):
    ten = [{"name": f"r{i}", "run_dir": str(results_dir / "exp" / f"r{i}"), "argv": ["true"], "experiment": "exp"}
           for i in range(10)]
    packed = tool("runbatch", "--slurm", "--dry-run", "--live-code", "--runs-per-task=5", input=lines(ten), check=0)
    assert "#SBATCH --array=0-1\n" in packed.stdout and "10 runs, 5 per task" in packed.stdout
    assert packed.stdout.rstrip().endswith('"$SLURM_ARRAY_TASK_ID" --runs-per-task=5')
    three = tool("runbatch", "--slurm", "--dry-run", "--live-code", "--runs-per-task=4", input=lines(ten), check=0)
    assert "#SBATCH --array=0-2\n" in three.stdout
    plain = tool("runbatch", "--slurm", "--dry-run", "--live-code", input=lines(ten), check=0)
    assert "#SBATCH --array=0-9\n" in plain.stdout and "runs-per-task" not in plain.stdout
    assert plain.stdout.startswith("#!/bin/bash\n# runkit: 10 runs as one SLURM job array")
    bad = tool("runbatch", "--slurm", "--runs-per-task=0", input=lines(ten), check=2)
    assert "--runs-per-task" in bad.stderr and not (results_dir / "exp").exists()


@pytest.mark.slurm
@pytest.mark.slow
def test_ten_runs_packed_five_per_task_finish_in_two_tasks_forked_warm(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    ten = specs(tmp_path, "ten", range(10), **{"training_loop.n_epochs": 1})
    proc = tool("runbatch", "--slurm", "--runs-per-task=5", "--wait", "--poll=1", input=lines(ten), check=0,
                timeout=600)
    outcomes = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["status"] for o in outcomes] == ["finished"] * 10
    assert "of 2 tasks queued or running" in proc.stderr
    batch_dir = runs.read_slurm(ten[0]["run_dir"])["batch_dir"]
    record = json.load(open(os.path.join(batch_dir, "batch.json")))
    [array] = record["jobs"]
    assert (array["first"], array["count"], record["runs"], record["runs_per_task"]) == (0, 2, 10, 5)
    for i, (s, o) in enumerate(zip(ten, outcomes, strict=True)):
        assert (o["slurm_job"], o["slurm_task"]) == (array["job_id"], str(i // 5))
        slurm_json = runs.read_slurm(s["run_dir"])
        [attempt] = slurm_json["attempts"]
        assert slurm_json["task"] == i // 5 and attempt["warm"] is True and attempt["exit_code"] == 0
        assert os.path.getsize(os.path.join(s["run_dir"], f"slurm-{array['job_id']}_{i // 5}.log")) > 0
        ids = runs.read_json(s["run_dir"], runs.META)["slurm"]
        assert (ids["SLURM_ARRAY_JOB_ID"], ids["SLURM_ARRAY_TASK_ID"]) == (array["job_id"], str(i // 5))
    rows = tool("collect", "--format", "jsonl", results_dir / "digits", check=0).stdout.splitlines()
    assert [json.loads(row)["status"] for row in rows] == ["finished"] * 10
    again = json.loads(tool("runbatch", "--slurm", "--runs-per-task=5", input=lines(ten), check=0).stdout)
    assert (again["runs"], again["skipped"]) == (0, 10)


@pytest.mark.slurm
@pytest.mark.slow
def test_a_packed_task_warned_in_its_third_run_resumes_it_exactly_then_runs_the_rest(
        slurm_cluster, results_dir, tmp_path):  # noqa: F811
    short = specs(tmp_path, "short", [1, 2, 3], **{"training_loop.n_epochs": 1})
    [long] = specs(tmp_path, "long", [0], config="digits_cnn.gin", **{
        "training_loop.n_epochs": 8, "cnn.n_filters": 32, "training_loop.checkpoint_every_n_steps": 10})
    twin = renamed(long, "uninterrupted")
    task = [short[0], short[1], long, short[2]]
    job = json.loads(tool("runbatch", "--slurm", "--runs-per-task=4", input=lines([*task, twin]),
                          check=0).stdout)["job_id"]
    wait_until(lambda: len(runs.read_history(long["run_dir"])) >= 2, timeout=300)  # in epoch 3 of 8
    assert [runs.status(s["run_dir"]) for s in task[:2]] == ["finished", "finished"]
    assert runs.status(long["run_dir"]) != "finished" and not runs.read_slurm(short[2]["run_dir"])["attempts"]
    warn_and_restart(f"{job}_0")
    wait_until(lambda: all(squeue_state(f"{job}_{t}")[:1] == ["COMPLETED"] for t in (0, 1)), timeout=600)
    assert all(runs.status(s["run_dir"]) == "finished" for s in (*task, twin))

    def attempts(s):
        return [(a["status"], a["restart_count"]) for a in runs.read_slurm(s["run_dir"])["attempts"]]
    assert attempts(short[0]) == attempts(short[1]) == [("finished", 0), ("skipped", 1)]
    assert attempts(long) == [("stopped", 0), ("finished", 1)]
    assert attempts(short[2]) == [("finished", 1)]
    log = open(f"{long['run_dir']}/slurm-{job}_0.log").read()
    assert "resumed at epoch" in log
    assert "DUE TO JOB REQUEUE" in open(f"{runs.read_slurm(long['run_dir'])['batch_dir']}/.tasks/0/slurm-{job}_0.log").read()
    assert_same_run(long["run_dir"], twin["run_dir"])
