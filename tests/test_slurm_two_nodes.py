"""A real two-node SLURM cluster on one machine (scripts/slurm-cluster start --nodes 2): two slurmd, each in
its own network namespace and hostname, joined to the controller's namespace by veth pairs. Jobs span both
nodes; a two-process DDP run (gloo over the veth link) preempted and requeued ends as an uninterrupted one."""
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, requires, tool
from helpers.same_run import assert_same_run
from runkit.rundir import runs
from runkit.sweeps import batch_folder
from slurm_cluster import NETNS, SCRIPT, squeue_state, two_node_session, two_nodes, wait_until, warn_and_restart  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slurm, requires(*NETNS)]


def root_addresses():
    return subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout


def test_two_nodes_each_in_its_namespace_run_one_job_together(two_nodes, tmp_path):  # noqa: F811
    nodes = tool("sinfo", "-h", "-N", "-o", "%N %T", check=0).stdout.split("\n")
    assert [line.split()[0] for line in nodes if line] == ["node1", "node2"]
    assert "10.77.0." not in root_addresses()  # the cluster's addresses live in its namespaces only
    out = tmp_path / "out.txt"
    tool("sbatch", "--wait", "--nodes=2", "--ntasks-per-node=1", f"--output={out}", "--wrap",
         "srun sh -c 'echo $SLURM_PROCID $(hostname) $(getent hosts node1 | cut -d\" \" -f1)'",
         check=0, timeout=120)
    assert sorted(out.read_text().splitlines()) == ["0 node1 10.77.0.11", "1 node2 10.77.0.11"]


def test_stop_removes_the_namespaces_and_their_addresses(two_nodes, tmp_path):  # noqa: F811
    prefix = f"rkt{os.getpid() % 100000}"
    env = dict(os.environ, RUNKIT_SLURM_DIR=str(tmp_path / "c"), RUNKIT_SLURM_NETNS=prefix)
    before = root_addresses()
    try:
        up = tool(SCRIPT, "start", "--nodes", "2", env=env, check=0, timeout=120)
        assert f"export SLURM_CONF={tmp_path / 'c' / 'slurm.conf'}" in up.stdout
        listed = tool("ip", "netns", "list", check=0).stdout
        assert all(f"{prefix}-{name}" in listed for name in ("ctl", "node1", "node2"))
    finally:
        tool(SCRIPT, "stop", "--nodes", "2", env=env, check=0)
    assert prefix not in tool("ip", "netns", "list", check=0).stdout
    assert not any(e.startswith(prefix) for e in os.listdir("/etc/netns")) if os.path.isdir("/etc/netns") else True
    assert root_addresses() == before
    assert tool(SCRIPT, "status", "--nodes", "2", env=env).returncode == 1
    assert tool(SCRIPT, "start", "--nodes", "x").returncode == 2


BINDINGS = ("trainer.accelerator='cpu'", "training_loop.n_epochs=4", "cnn.n_filters=16",
            "training_loop.checkpoint_every_n_steps=5")


def train_spec(results_dir, name):
    run_dir = str(results_dir / "ddp" / name)
    return {"name": name, "run_dir": run_dir, "experiment": "ddp",
            "argv": ["train", run_dir, str(REPO / "configs" / "digits_cnn.gin"), "-b", "#".join(BINDINGS)]}


def weights(run_dir):
    import torch
    return torch.load(runs.checkpoint_path(run_dir), weights_only=True)["state_dict"]


@pytest.mark.slow
def test_a_ddp_run_across_two_nodes_preempted_ends_as_an_uninterrupted_one(two_nodes, results_dir):  # noqa: F811
    run, twin = train_spec(results_dir, "preempted"), train_spec(results_dir, "uninterrupted")
    specs = "".join(json.dumps(s) + "\n" for s in (run, twin))
    submitted = json.loads(tool("runbatch", "--slurm", "--nodes=2", "--ntasks-per-node=1", input=specs,
                                check=0).stdout)
    job = submitted["job_id"]
    wait_until(lambda: len(runs.read_history(run["run_dir"])) >= 1, timeout=300)  # in epoch 2 of 4
    assert runs.status(run["run_dir"]) != "finished"
    warn_and_restart(f"{job}_0")
    wait_until(lambda: all(squeue_state(f"{job}_{task}")[:1] == ["COMPLETED"] for task in (0, 1)), timeout=600)
    assert all(runs.status(s["run_dir"]) == "finished" for s in (run, twin))

    attempts = runs.read_slurm(run["run_dir"])["attempts"]
    assert [(a["status"], a["restart_count"]) for a in attempts] == [("stopped", 0), ("finished", 1)]
    assert "resumed at epoch" in (results_dir / "ddp" / "preempted" / runs.LOG).read_text()
    ranks = runs.read_json(run["run_dir"], runs.META)["ranks"]
    assert [(r["rank"], r["host"]) for r in ranks] == [(0, "node1"), (1, "node2")]  # one process a node

    assert_same_run(run["run_dir"], twin["run_dir"])
    mine, theirs = weights(run["run_dir"]), weights(twin["run_dir"])
    assert mine.keys() == theirs.keys() and all(mine[k].equal(theirs[k]) for k in mine)


def slurmd_pid(node):
    conf = os.environ["SLURM_CONF"]
    return int(open(os.path.join(os.path.dirname(conf), f"slurmd-{node}.pid")).read())


def collect_status(folder, name):
    """The run's status as `collect` (the real tool) shows it."""
    rows = tool("collect", "--format", "jsonl", folder, check=0).stdout.splitlines()
    return next(row["status"] for row in map(json.loads, rows) if row["name"] == name)


@pytest.mark.slow
def test_a_node_that_dies_mid_run_requeues_the_run_which_resumes_on_a_live_node(two_nodes, results_dir, tmp_path):  # noqa: F811
    run = train_spec(results_dir, "node_died")
    reference = results_dir / "reference"
    tool("train", reference, REPO / "configs" / "digits_cnn.gin", "-b", run["argv"][-1], check=0)
    given, said, printed = (tmp_path / name for name in ("specs.jsonl", "stderr", "stdout"))
    given.write_text(json.dumps(run) + "\n")
    with open(given) as stdin, open(printed, "w") as stdout, open(said, "w") as stderr:
        waiting = subprocess.Popen(["runbatch", "--slurm", "--wait", "--poll=1"], stdin=stdin, stdout=stdout,
                                   stderr=stderr)
    try:
        wait_until(lambda: len(runs.read_history(run["run_dir"])) >= 1, timeout=300)
        task = f"{batch_folder.arrays(runs.read_slurm(run['run_dir'])['batch_dir'])[0]['job_id']}_0"
        node = subprocess.run(["squeue", "-h", "-j", task, "-o", "%N"], capture_output=True,
                              text=True).stdout.strip()
        assert node in ("node1", "node2")
        os.kill(slurmd_pid(node), 9)  # the node dies: its slurmd, then everything in its namespace
        netns = os.environ.get("RUNKIT_SLURM_NETNS", "runkit")
        pids = subprocess.run(["ip", "netns", "pids", f"{netns}-{node}"], capture_output=True, text=True).stdout
        for pid in pids.split():
            os.kill(int(pid), 9)
        seen = set()

        def requeued():
            seen.add(collect_status(results_dir / "ddp", "node_died"))
            return squeue_state(task)[:1] == ["PENDING"]
        wait_until(requeued, timeout=180)  # SlurmdTimeout=10: the node is DOWN, the job requeued
        assert "finished" not in seen and seen <= {"running", "dead"}, seen
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], check=True, timeout=60)
        waiting.wait(timeout=600)
        again = subprocess.run(["squeue", "-h", "-t", "all", "-j", task, "-o", "%N"], capture_output=True,
                               text=True).stdout.strip()
        assert again != node and runs.status(run["run_dir"]) == "finished"
        assert "resumed at epoch" in (results_dir / "ddp" / "node_died" / runs.LOG).read_text()
        assert_same_run(run["run_dir"], reference)
        err = said.read_text()
        assert waiting.returncode == 0, err
        assert "task 0 (node_died) was requeued by SLURM (it was RUNNING)" in err, err
        assert "task 0 (node_died) restarted after 1 requeue" in err, err
        outcome = json.loads(printed.read_text())
        assert (outcome["status"], outcome["attempts"], outcome["slurm_requeues"]) == ("finished", 2, 1)
    finally:  # the dead node back: the cluster whole again for the next test
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        tool(SCRIPT, "start", "--nodes", "2", check=0, timeout=180)
