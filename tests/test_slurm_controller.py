"""The SLURM controller restarts (slurmctld stopped for 20 s, its state saved, then started again, as an admin
does) while `runbatch --slurm --wait` waits and its jobs train: the wait says so and rides it out, no run is
submitted or trained twice, and the batch finishes."""
import json
import os
import subprocess

import pytest

from conftest import REPO, tool
from runkit.rundir import runs
from slurm_cluster import SCRIPT, slurm_cluster, wait_until  # noqa: F401 - fixture

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def spec(results_dir, name):
    run_dir = str(results_dir / "outage" / name)
    return {"name": name, "run_dir": run_dir, "experiment": "outage",
            "argv": ["train", run_dir, str(REPO / "configs" / "digits_mlp.gin"), "-b",
                     f"training_loop.n_epochs=15#training_loop.seed={name[-1]}"]}


def test_a_controller_restart_while_waiting_is_ridden_out_and_nothing_runs_twice(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    specs = [spec(results_dir, f"r{i}") for i in range(3)]  # two run at once on the 2 CPUs, one waits its turn
    given, said, printed = (tmp_path / name for name in ("specs.jsonl", "stderr", "stdout"))
    given.write_text("".join(json.dumps(s) + "\n" for s in specs))
    with open(given) as stdin, open(printed, "w") as stdout, open(said, "w") as stderr:
        waiting = subprocess.Popen(["runbatch", "--slurm", "--wait", "--poll=1"], stdin=stdin, stdout=stdout,
                                   stderr=stderr)
    outage = None
    try:
        wait_until(lambda: sum(len(runs.read_history(s["run_dir"])) >= 1 for s in specs) >= 2, timeout=300)
        outage = tool(SCRIPT, "restart-controller", "20", check=0, timeout=180)  # returns once it answers again
        assert "slurmctld answers again" in outage.stderr
        waiting.wait(timeout=600)
    finally:  # the cluster whole for the next test, whatever happened here
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
            for batch in (results_dir / "outage" / "batches").glob("*/batch.json"):  # its jobs too
                tool("scancel", *(job["job_id"] for job in json.loads(batch.read_text())["jobs"]))
        if outage is None:
            tool(SCRIPT, "start", timeout=180)
    out, err = printed.read_text(), said.read_text()
    assert waiting.returncode == 0, err
    # SLURM's clients fail at once or keep trying, depending on how far the controller got: either is said
    assert "no answer from SLURM" in err or "squeue has not answered for 10 s" in err
    assert "go on" in err and "SLURM answers again, after" in err
    assert "requeued" not in err and "Traceback" not in err
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert [(o["name"], o["status"], o["attempts"], o["slurm_requeues"]) for o in outcomes] == [
        (s["name"], "finished", 1, 0) for s in specs]
    batches = os.listdir(results_dir / "outage" / "batches")
    assert len(batches) == 1  # submitted once
    for s in specs:  # trained once: one attempt, never requeued, every epoch once, no resume
        attempts = runs.read_slurm(s["run_dir"])["attempts"]
        assert [(a["status"], a["restart_count"]) for a in attempts] == [("finished", 0)]
        assert [row["epoch"] for row in runs.read_history(s["run_dir"])] == list(range(1, 16))
        assert "resumed" not in open(os.path.join(s["run_dir"], runs.LOG)).read()
    assert {row["status"] for row in map(json.loads, tool("collect", "--format", "jsonl", results_dir / "outage",
                                                              check=0).stdout.splitlines())} == {"finished"}
