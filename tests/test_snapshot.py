"""Frozen code (runkit.sweeps.snapshot): a batch runs the code as it was when it was submitted, uncommitted changes
included, whatever happens to the checkout while it waits; --live-code runs the checkout as it is."""
import json
import os
import subprocess
import sys

import pytest

from conftest import tool
from runkit.rundir import runs
from runkit.sweeps import snapshot
from slurm_cluster import slurm_cluster, squeue_state, wait_until  # noqa: F401 - fixture

# A job of the project: says which version of itself runs, from where, and what its config says.
JOB = """\
import os, sys
VERSION = {version!r}
print(VERSION, open(sys.argv[1]).read().strip(), os.path.abspath(__file__), os.environ.get("RUNKIT_CODE_SNAPSHOT"))
"""


def git(project, *args):
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)


@pytest.fixture
def project(tmp_path):
    """A git checkout with a job, a config, ignored results and data, an untracked file; v1 committed, then
    an uncommitted change (v1-dirty)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / ".gitignore").write_text("results/\nignored.txt\n")
    (root / "job.py").write_text(JOB.format(version="v1"))
    (root / "conf.txt").write_text("lr=1")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    (root / "job.py").write_text(JOB.format(version="v1-dirty"))   # uncommitted: goes with the snapshot
    (root / "new.py").write_text("# untracked, not ignored\n")
    (root / "ignored.txt").write_text("ignored")
    for folder in ("results", "data", ".venv"):
        (root / folder).mkdir()
        (root / folder / "big.bin").write_bytes(b"x" * 1000)
    return root


def specs(project, results_dir, *names):
    return "".join(json.dumps({"name": n, "run_dir": str(results_dir / "exp" / n), "experiment": "exp",
                               "argv": [sys.executable, "job.py", "conf.txt"]}) + "\n" for n in names)


def output(results_dir, name):
    run_dir = results_dir / "exp" / name
    logs = [f for f in os.listdir(run_dir) if f.startswith("slurm-")] or [runs.STDOUT]
    return (run_dir / logs[0]).read_text().split()


def test_a_snapshot_holds_the_project_as_it_is_and_nothing_else(project, tmp_path):
    made = snapshot.make(str(tmp_path / "batch"), str(project))
    copied = sorted(os.path.relpath(os.path.join(d, f), made["snapshot"])
                    for d, _, fs in os.walk(made["snapshot"]) for f in fs)
    assert copied == [".gitignore", "conf.txt", "job.py", "new.py"]
    assert "v1-dirty" in open(os.path.join(made["snapshot"], "job.py")).read()
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert made["git_commit"] == head.strip() and made["git_dirty"] and "v1-dirty" in made["git_diff"]
    assert json.load(open(tmp_path / "batch" / "code.json"))["files"] == 4
    # a copy, not a link: writing the checkout's file in place leaves the snapshot alone
    with open(project / "conf.txt", "r+") as f:
        f.write("lr=2")
    assert open(os.path.join(made["snapshot"], "conf.txt")).read() == "lr=1"


@pytest.mark.slurm
def test_a_queued_batch_runs_the_code_it_was_submitted_with(slurm_cluster, project, results_dir):  # noqa: F811
    held = ["--sbatch=--hold"]  # queued until released: the checkout changes meanwhile
    frozen = json.loads(tool("runbatch", "--slurm", *held, input=specs(project, results_dir, "frozen"),
                             cwd=project, check=0).stdout)
    live = json.loads(tool("runbatch", "--slurm", "--live-code", *held, input=specs(project, results_dir, "live"),
                           cwd=project, check=0).stdout)
    (project / "job.py").write_text(JOB.format(version="v2"))
    (project / "conf.txt").write_text("lr=2")
    for job in (frozen["job_id"], live["job_id"]):
        subprocess.run(["scontrol", "release", job], check=True, timeout=60)
    wait_until(lambda: all(squeue_state(f"{j}_0")[:1] == ["COMPLETED"] for j in (frozen["job_id"], live["job_id"])))
    code = os.path.join(frozen["batch_dir"], "code")
    assert output(results_dir, "frozen") == ["v1-dirty", "lr=1", os.path.join(code, "job.py"), code]
    assert output(results_dir, "live") == ["v2", "lr=2", str(project / "job.py"), "None"]
    assert not os.path.exists(os.path.join(live["batch_dir"], "code"))
    assert json.load(open(os.path.join(frozen["batch_dir"], "batch.json")))["code_snapshot"] == code


def test_local_runbatch_snapshot_runs_every_job_from_one_copy(project, results_dir):
    proc = tool("runbatch", "--snapshot", "-j", "2", input=specs(project, results_dir, "a", "b"), cwd=project,
                check=0)
    assert "froze the code of" in proc.stderr
    [batch] = os.listdir(results_dir / "exp" / "batches")
    code = str(results_dir / "exp" / "batches" / batch / "code")
    for name in ("a", "b"):
        assert output(results_dir, name) == ["v1-dirty", "lr=1", os.path.join(code, "job.py"), code]
    plain = tool("runbatch", input=specs(project, results_dir, "c"), cwd=project, check=0)
    assert "froze" not in plain.stderr and output(results_dir, "c")[2] == str(project / "job.py")


def test_a_snapshot_leaves_out_the_run_folders_and_earlier_snapshots(project, monkeypatch):
    monkeypatch.delenv("RESULTS_DIR", raising=False)  # results in the checkout, and git does not ignore them
    (project / "runs" / "r0").mkdir(parents=True)
    (project / "runs" / "r0" / "history.csv").write_text("epoch\n1\n")
    first = snapshot.make(str(project / "runs" / "batches" / "1"), str(project))
    second = snapshot.make(str(project / "runs" / "batches" / "2"), str(project))
    assert first["files"] == second["files"] == 4
