"""Real training through SLURM on the local cluster: gridgen | runbatch --slurm --wait on the digits data,
resubmission, a real failure, and a run preempted mid-training that ends as an uninterrupted one."""
import json
import subprocess

import pytest

from conftest import tool
from helpers.grids import train_grid
from helpers.same_run import assert_same_run
from runkit.rundir import runs
from slurm_cluster import slurm_cluster, squeue_state, wait_until, warn_and_restart  # noqa: F401 - fixture

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def grid(tmp_path, values, axis="optimizer.lr", config="digits_mlp.gin", **fixed):
    return train_grid(tmp_path / "grid.yaml", "digits", fixed, {axis: list(values)}, config=config)


def sh(command, cwd, check=0):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == check, f"{command} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def table(folder):
    rows = tool("collect", "--format", "jsonl", folder).stdout.splitlines()
    return {row["name"]: row for row in map(json.loads, rows)}


def test_a_digits_grid_finishes_and_collect_agrees_then_resubmission_submits_nothing(
        slurm_cluster, results_dir, tmp_path):  # noqa: F811
    path = grid(tmp_path, [0.01, 0.1], **{"training_loop.n_epochs": 2})
    proc = sh(f"gridgen {path} | runbatch --slurm --wait --poll=1", tmp_path)
    outcomes = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["status"] for o in outcomes] == ["finished", "finished"]
    rows = table(results_dir / "digits")
    assert {name: row["status"] for name, row in rows.items()} == {o["name"]: "finished" for o in outcomes}
    assert all(row["final_epoch"] == 2 and row["best_val_acc"] > 0.5 for row in rows.values())
    for task, o in enumerate(outcomes):  # train records the SLURM ids too
        slurm_ids = runs.read_json(o["run_dir"], runs.META)["slurm"]
        assert (slurm_ids["SLURM_ARRAY_JOB_ID"], slurm_ids["SLURM_ARRAY_TASK_ID"]) == (o["slurm_job"], str(task))
    again = sh(f"gridgen {path} | runbatch --slurm", tmp_path)
    assert json.loads(again.stdout) == {"job_id": None, "job_ids": [], "batch_dir": None, "runs": 0, "skipped": 2, "conflicts": 0}


def test_a_real_error_fails_once_and_shows_in_wait_and_collect(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    path = grid(tmp_path, [0.05, 1e12], **{"training_loop.n_epochs": 1})  # 1e12 makes the loss NaN
    proc = sh(f"gridgen {path} | runbatch --slurm --wait --poll=1", tmp_path, check=1)
    outcomes = {o["name"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert outcomes["lr=0.05"]["status"] == "finished"
    failed = outcomes["lr=1000000000000.0"]
    assert failed["status"] == "failed" and failed["exit_code"] == 1 and failed["attempts"] == 1
    assert runs.read_json(failed["run_dir"], runs.ERROR)["type"] == "NonFiniteMetric"
    assert {n: r["status"] for n, r in table(results_dir / "digits").items()} == {
        "lr=0.05": "finished", "lr=1000000000000.0": "failed"}
    assert "1 of 2 runs failed" in proc.stderr


def test_a_run_preempted_mid_training_ends_as_an_uninterrupted_one(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    bindings = {"training_loop.n_epochs": 8, "cnn.n_filters": 32, "training_loop.checkpoint_every_n_steps": 10}
    path = grid(tmp_path, [0], axis="training_loop.seed", config="digits_cnn.gin", **bindings)
    [run] = map(json.loads, tool("gridgen", path, check=0).stdout.splitlines())
    twin = dict(run, name="uninterrupted", run_dir=str(results_dir / "digits" / "uninterrupted"))
    twin["argv"] = [twin["run_dir"] if a == run["run_dir"] else a for a in run["argv"]]
    specs = "".join(json.dumps(s) + "\n" for s in (run, twin))
    job = json.loads(tool("runbatch", "--slurm", input=specs, check=0).stdout)["job_id"]
    wait_until(lambda: len(runs.read_history(run["run_dir"])) >= 2, timeout=120)  # in epoch 3 of 8
    assert runs.status(run["run_dir"]) != "finished"
    warn_and_restart(f"{job}_0")
    wait_until(lambda: all(squeue_state(f"{job}_{task}")[:1] == ["COMPLETED"] for task in (0, 1)), timeout=300)
    assert all(runs.status(s["run_dir"]) == "finished" for s in (run, twin))

    attempts = runs.read_slurm(run["run_dir"])["attempts"]
    assert [(a["status"], a["restart_count"]) for a in attempts] == [("stopped", 0), ("finished", 1)]
    log = open(f"{run['run_dir']}/slurm-{job}_0.log").read()
    assert "DUE TO JOB REQUEUE" in log and "resumed at epoch" in log
    assert_same_run(run["run_dir"], twin["run_dir"])
