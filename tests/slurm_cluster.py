"""The `slurm_cluster` fixture (the local cluster of scripts/slurm-cluster, started once per session) and
helpers for tests that drive SLURM.

A test module that needs SLURM imports the fixture (`from slurm_cluster import slurm_cluster`) and is
marked `pytest.mark.slurm`. The cluster is started through the script a user runs, and left running for
the next session (starting it again is a no-op). Tests skip only where the SLURM binaries are absent.
RUNKIT_SLURM_NODES=2 makes it the two-node cluster (scripts/slurm-cluster reads it): the suite on two nodes.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import skip
from helpers.waiting import wait_for

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm-cluster"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def missing_binaries():
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [b for b in BINARIES if not shutil.which(b, path=search)]


@pytest.fixture(scope="session")
def slurm_cluster():
    """SLURM_CONF of a running local cluster, also exported to every process the tests start."""
    missing = missing_binaries()
    if missing:
        skip(f"SLURM is not installed ({', '.join(missing)} not found); "
                    "apt-get install slurmctld slurmd slurm-client munge to run these tests")
    proc = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"scripts/slurm-cluster start failed:\n{proc.stderr}"
    exports = dict(line.removeprefix("export ").split("=", 1) for line in proc.stdout.splitlines())
    os.environ["SLURM_CONF"] = exports["SLURM_CONF"]
    if "PATH" in exports:  # RUNKIT_SLURM_NODES=2: the suite on two nodes, through their client wrappers
        os.environ["PATH"] = exports["PATH"].replace("$PATH", os.environ["PATH"])
    return exports["SLURM_CONF"]


# The programs `scripts/slurm-cluster start --nodes 2` needs besides SLURM's: mark its tests requires(*NETNS)
NETNS = ("ip", "nsenter", "unshare")


@pytest.fixture(scope="session")
def two_node_session():
    """{"SLURM_CONF", "PATH"} of the two-node cluster (nodes in network namespaces), stopped at the end of
    the session: its namespaces and daemons are not left behind."""
    proc = subprocess.run([str(SCRIPT), "start", "--nodes", "2"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"scripts/slurm-cluster start --nodes 2 failed:\n{proc.stderr}"
    exports = dict(line.removeprefix("export ").split("=", 1) for line in proc.stdout.splitlines())
    yield {"SLURM_CONF": exports["SLURM_CONF"],
           "PATH": exports["PATH"].replace("$PATH", os.environ["PATH"])}
    subprocess.run([str(SCRIPT), "stop", "--nodes", "2"], capture_output=True, timeout=180)


@pytest.fixture
def two_nodes(two_node_session, monkeypatch):
    """The two-node cluster, pointed at for this test (SLURM_CONF, and PATH with its client wrappers)."""
    for name, value in two_node_session.items():
        monkeypatch.setenv(name, value)
    return two_node_session


def wait_until(predicate, timeout=60):
    """helpers.waiting.wait_for at the pace SLURM is asked: a poll that runs squeue starts a process."""
    wait_for(predicate, "the SLURM condition", timeout, every=0.3)


def squeue_state(task):
    """[STATE, REASON] of an array task as squeue lists it ([] once SLURM forgot it)."""
    proc = subprocess.run(["squeue", "--noheader", "--states=all", "--jobs", task, "--format=%T %r"],
                          capture_output=True, text=True, timeout=60)
    return proc.stdout.split()


def warn_and_restart(task):
    """SLURM's warning before the time limit, then skip the wait of the requeued task (about 2 minutes)."""
    subprocess.run(["scancel", "--signal=USR1", "--batch", task], check=True, timeout=60)
    wait_until(lambda: squeue_state(task)[:1] == ["PENDING"])
    # slurmd refuses to launch a job in the same second it revoked the job's last credential ("Job
    # credential revoked"): that is what SLURM's own two-minute wait avoids.
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], check=True, timeout=60)
