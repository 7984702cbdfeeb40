"""scripts/slurm-cluster: starts idempotently, runs jobs, stops, and keeps to its own state directory."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import tool
from slurm_cluster import SCRIPT, slurm_cluster  # noqa: F401 - the fixture


@pytest.mark.slurm
def test_start_again_is_a_no_op_and_jobs_run(slurm_cluster, tmp_path):  # noqa: F811
    state = Path(slurm_cluster).parent
    daemons = ("slurmctld.pid", "slurmd.pid", "munge/munged.pid")
    pids = [(state / f).read_text() for f in daemons]
    again = tool(SCRIPT, "start", check=0)
    assert [(state / f).read_text() for f in daemons] == pids  # the same daemons: nothing restarted
    assert again.stdout.strip() == f"export SLURM_CONF={slurm_cluster}"
    tool(SCRIPT, "status", check=0)
    out = tmp_path / "out.txt"
    tool("sbatch", "--wait", f"--output={out}", "--wrap", "echo ran on $SLURM_JOB_PARTITION", check=0,
         timeout=60)
    assert out.read_text() == "ran on debug\n"


@pytest.mark.slurm
def test_a_second_cluster_in_its_own_dir_starts_and_stops_alone(slurm_cluster, tmp_path):  # noqa: F811
    port = 17000 + 2 * (os.getpid() % 400)  # two test sessions at once must not share ports
    env = dict(os.environ, RUNKIT_SLURM_DIR=str(tmp_path / "c"), RUNKIT_SLURM_PORT=str(port), RUNKIT_SLURM_NODES="1")
    up = tool(SCRIPT, "start", check=0, env=env, timeout=120)
    conf = str(tmp_path / "c" / "slurm.conf")
    assert up.stdout.strip() == f"export SLURM_CONF={conf}"
    try:
        sinfo = tool("sinfo", "-h", "-o", "%T", env=dict(env, SLURM_CONF=conf), check=0)
        assert sinfo.stdout.split() == ["idle"]
        pids = [int((tmp_path / "c" / f).read_text()) for f in ("slurmctld.pid", "slurmd.pid", "munge/munged.pid")]
    finally:
        tool(SCRIPT, "stop", check=0, env=env)
    assert tool(SCRIPT, "status", env=env).returncode == 1
    assert not any(_alive(pid) for pid in pids)
    tool(SCRIPT, "status", check=0)  # the session's cluster is still up


def test_bad_command_is_a_usage_error():
    proc = subprocess.run([str(SCRIPT), "restart-everything"], capture_output=True, text=True)
    assert proc.returncode == 2 and "slurm-cluster start" in proc.stderr


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A daemon that exited but is not reaped yet (its parent is gone) is a zombie: not alive.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"
