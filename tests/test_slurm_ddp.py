"""A run of two processes through srun on the local cluster (runbatch --slurm --ntasks-per-node 2): DDP on the
CPU with gloo, ranks from Lightning's SLURMEnvironment, the run folder written by rank 0 alone, and a
preemption that ends in one checkpoint and one requeue, after which the run ends as an uninterrupted one."""
import json
import os
import subprocess

import pytest

from conftest import REPO, tool
from helpers.same_run import assert_same_run
from runkit.rundir import runs
from slurm_cluster import slurm_cluster, squeue_state, wait_until, warn_and_restart  # noqa: F401 - fixture

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BINDINGS = ("trainer.accelerator='cpu'", "training_loop.n_epochs=6", "cnn.n_filters=32", "cnn.dropout=0.3",
            "training_loop.checkpoint_every_n_steps=5")


def train_spec(results_dir, name):
    run_dir = str(results_dir / "ddp" / name)
    return {"name": name, "run_dir": run_dir, "experiment": "ddp",
            "argv": ["train", run_dir, str(REPO / "configs" / "digits_cnn.gin"), "-b", "#".join(BINDINGS)]}


def weights(run_dir):
    import torch
    state = torch.load(runs.checkpoint_path(run_dir), weights_only=True)["state_dict"]
    return {k: v for k, v in state.items()}


def test_a_two_process_run_preempted_ends_as_an_uninterrupted_one(slurm_cluster, results_dir):  # noqa: F811
    run, twin = train_spec(results_dir, "preempted"), train_spec(results_dir, "uninterrupted")
    specs = "".join(json.dumps(s) + "\n" for s in (run, twin))
    submitted = json.loads(tool("runbatch", "--slurm", "--ntasks-per-node=2", input=specs, check=0).stdout)
    job = submitted["job_id"]
    script = open(os.path.join(submitted["batch_dir"], "job.sbatch")).read()
    assert "#SBATCH --nodes=1\n" in script and "#SBATCH --ntasks-per-node=2\n" in script
    wait_until(lambda: len(runs.read_history(run["run_dir"])) >= 2, timeout=300)  # in epoch 3 of 6
    assert runs.status(run["run_dir"]) != "finished"
    warn_and_restart(f"{job}_0")
    wait_until(lambda: all(squeue_state(f"{job}_{task}")[:1] == ["COMPLETED"] for task in (0, 1)), timeout=600)
    assert all(runs.status(s["run_dir"]) == "finished" for s in (run, twin))

    # One checkpoint, one requeue: the SLURM task stopped once and ran again; rank 0 alone asked SLURM.
    attempts = runs.read_slurm(run["run_dir"])["attempts"]
    assert [(a["status"], a["restart_count"]) for a in attempts] == [("stopped", 0), ("finished", 1)]
    log = (results_dir / "ddp" / "preempted" / runs.LOG).read_text()
    assert log.count("requeued SLURM job") == 1 and "resumed at epoch" in log
    assert not [f for f in os.listdir(run["run_dir"]) if f.startswith("hpc_ckpt")]  # not Lightning's requeue

    # Both ranks, as SLURM numbered them, in meta.json; the trainer had 2 processes on 1 node.
    meta = runs.read_json(run["run_dir"], runs.META)
    ranks = meta["ranks"]
    assert [r["slurm"]["SLURM_PROCID"] for r in ranks] == ["0", "1"] and [r["rank"] for r in ranks] == [0, 1]
    assert {r["slurm"]["SLURM_JOB_ID"] for r in ranks} == {meta["slurm"]["SLURM_JOB_ID"]}
    assert len({r["pid"] for r in ranks}) == 2 and meta["attempts"] == 2
    assert "MEMBER: 2/2" not in log and "MEMBER: 1/2" in log  # only rank 0 writes the run's log
    # Both attempts ran the code frozen at submission (runkit.sweeps.snapshot), and say so.
    code = os.path.join(submitted["batch_dir"], "code")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert meta["code_snapshot"] == code and meta["git_commit"] == head.strip()
    assert meta["argv"][0] == os.path.join(code, "tools", "train") and meta["argv"][2].startswith(code)

    # The resumed run equals the uninterrupted one: history, metrics and weights.
    assert [row["step"] for row in runs.read_history(run["run_dir"])][:2] == [12, 24]  # 1437 images: 718 a rank, 64 a batch
    assert_same_run(run["run_dir"], twin["run_dir"])
    mine, theirs = weights(run["run_dir"]), weights(twin["run_dir"])
    assert mine.keys() == theirs.keys() and all(mine[k].equal(theirs[k]) for k in mine)
