"""Batches on a real cluster, politely: a batch larger than MaxArraySize is several arrays (on a cluster of
its own configured with MaxArraySize=3), --dependency, one squeue per poll, backoff, and a clear message
when the controller does not answer."""
import json
import os
import subprocess
import sys

import pytest

from conftest import tool
from runkit import errors
from runkit.rundir import runs
from runkit.sweeps.slurm import client, wait
from slurm_cluster import SCRIPT, slurm_cluster, wait_until  # noqa: F401 - fixture


def spec(results_dir, name, *argv):
    return {"name": name, "run_dir": str(results_dir / "exp" / name), "argv": list(argv), "experiment": "exp"}


def lines(specs):
    return "".join(json.dumps(s) + "\n" for s in specs)


@pytest.fixture(scope="module")
def small_arrays(tmp_path_factory, slurm_cluster):  # noqa: F811
    """SLURM_CONF of a second local cluster whose arrays hold at most 3 tasks (MaxArraySize=3)."""
    state = tmp_path_factory.mktemp("small")
    port = 17900 + 2 * (os.getpid() % 50)
    env = dict(os.environ, RUNKIT_SLURM_DIR=str(state), RUNKIT_SLURM_PORT=str(port), RUNKIT_SLURM_MAX_ARRAY_SIZE="3")
    tool(SCRIPT, "start", check=0, env=env, timeout=180)
    yield str(state / "slurm.conf")
    tool(SCRIPT, "stop", check=0, env=env, timeout=120)


def logging_squeue(folder, log):
    """A squeue on PATH that notes each call's arguments in `log`, then runs the real one."""
    real = subprocess.run(["which", "squeue"], capture_output=True, text=True, check=True).stdout.strip()
    folder.mkdir()
    (folder / "squeue").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    (folder / "squeue").chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.slurm
def test_a_batch_larger_than_max_array_size_is_several_arrays_and_one_batch(small_arrays, results_dir, tmp_path):
    env = dict(os.environ, SLURM_CONF=small_arrays,
               PATH=logging_squeue(tmp_path / "bin", tmp_path / "squeue.log"))
    specs = [spec(results_dir, f"r{i}", sys.executable, "-c", f"import time; time.sleep(1); print('run {i}')")
             for i in range(7)]
    submitted = json.loads(tool("runbatch", "--slurm", "--live-code", input=lines(specs), env=env, check=0).stdout)
    assert submitted["runs"] == 7 and len(submitted["job_ids"]) == 3 and submitted["job_id"] == submitted["job_ids"][0]
    batch_dir = submitted["batch_dir"]
    record = json.load(open(os.path.join(batch_dir, "batch.json")))
    assert [(a["first"], a["count"]) for a in record["jobs"]] == [(0, 3), (3, 3), (6, 1)]
    assert [a["job_id"] for a in record["jobs"]] == submitted["job_ids"]
    scripts = [open(a["script"]).read() for a in record["jobs"]]
    assert "#SBATCH --array=0-2\n" in scripts[0] and "--first" not in scripts[0]
    assert "#SBATCH --array=0-0\n" in scripts[2] and scripts[2].rstrip().endswith('"$SLURM_ARRAY_TASK_ID" --first=6')
    # Queued or running, in whichever array: submitting again submits nothing.
    again = json.loads(tool("runbatch", "--slurm", input=lines(specs), env=env, check=0).stdout)
    assert (again["runs"], again["skipped"]) == (0, 7)

    specs += [spec(results_dir, "late", *[sys.executable, "-c", "pass"])]
    proc = tool("runbatch", "--slurm", "--live-code", "--wait", "--poll=0.3", input=lines(specs), env=env, check=0)
    got = {o["name"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert got["late"]["status"] == "finished" and len(got) == 8
    wait_until(lambda: all(runs.status(s["run_dir"]) == "finished" for s in specs), timeout=120)
    for task, s in enumerate(specs[:7]):
        array = record["jobs"][task // 3]
        attempt = runs.read_slurm(s["run_dir"])["attempts"][-1]
        assert (attempt["job_id"], attempt["task_id"]) == (array["job_id"], str(task % 3))
        log = os.path.join(s["run_dir"], f"slurm-{array['job_id']}_{task % 3}.log")
        assert open(log).read() == f"run {task}\n"
    table = tool("collect", "--format", "jsonl", results_dir / "exp", check=0)
    assert {row["status"] for row in map(json.loads, table.stdout.splitlines())} == {"finished"}
    # One squeue a poll for the whole batch: every call asks for all of the user's jobs at once.
    calls = (tmp_path / "squeue.log").read_text().splitlines()
    assert calls and all(call == calls[0] for call in calls) and "--jobs" not in calls[0]


@pytest.mark.slurm
def test_dependency_holds_a_batch_until_another_succeeded(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    stamps = tmp_path / "stamps"
    note = "import sys, time; time.sleep(float(sys.argv[2])); open(sys.argv[1], 'a').write(sys.argv[3] + '\\n')"
    train = [spec(results_dir, "train", sys.executable, "-c", note, str(stamps), "2", "train done")]
    first = json.loads(tool("runbatch", "--slurm", "--live-code", input=lines(train), check=0).stdout)
    evaluate = [{**spec(results_dir, "eval", sys.executable, "-c", note, str(stamps), "0", "eval"),
                 "experiment": "exp"}]
    dependency = "afterok:" + ":".join(first["job_ids"])
    proc = tool("runbatch", "--slurm", "--live-code", "--wait", "--poll=0.3", f"--dependency={dependency}",
                input=lines(evaluate), check=0)
    assert json.loads(proc.stdout)["status"] == "finished"
    assert stamps.read_text().splitlines() == ["train done", "eval"]
    script = open(os.path.join(runs.read_slurm(evaluate[0]["run_dir"])["batch_dir"], "job.sbatch")).read()
    assert f"#SBATCH --dependency={dependency}\n" in script


@pytest.mark.slurm
def test_an_unreachable_controller_is_a_clear_message_not_a_traceback(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller "
                                    "(connect failure)' >&2\nexit 1\n")
    (bin_dir / "squeue").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", RUNBATCH_SLURM_PATIENCE="1")
    specs = [spec(results_dir, "r0", sys.executable, "-c", "pass")]
    proc = tool("runbatch", "--slurm", "--live-code", "--wait", "--poll=0.2", input=lines(specs), env=env, check=1)
    assert "Traceback" not in proc.stderr and "no answer from SLURM" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "has not answered for" in last and "Unable to contact slurm controller" in last and "collect" in last
    wait_until(lambda: runs.status(specs[0]["run_dir"]) == "finished")  # the job went on


def test_waiting_backs_off_while_slurm_is_slow_or_away(tmp_path, monkeypatch):
    batch_dir = tmp_path / "batch"
    batch_dir.mkdir()
    (batch_dir / "batch.json").write_text(json.dumps(
        {"job_id": "7", "jobs": [{"job_id": "7", "script": "s", "first": 0, "count": 1}], "runs": 1}))
    now = [0.0]
    answers = iter([client.Unreachable("squeue failed: down"), client.Unreachable("squeue failed: down"),
                    ("slow", {("7", "0"): ("RUNNING", "s")}), ("fast", {("7", "0"): ("RUNNING", "s")}),
                    ("fast", {("7", "0"): ("COMPLETED", "s")})])

    def squeue(waiting=None):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        now[0] += 5.0 if answer[0] == "slow" else 0.01
        return answer[1]

    slept = []
    monkeypatch.setattr(client, "squeue", squeue)
    said = open(tmp_path / "progress", "w")
    states = wait.wait_for(str(batch_dir), [{"name": "r", "run_dir": str(tmp_path / "r")}], poll=1.0,
                            progress=said, patience=60, clock=lambda: now[0],
                            sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    assert states == {0: "COMPLETED"} and slept == [2.0, 4.0, 8.0, 1.0]
    said.close()
    assert "asking again in 2 s" in (tmp_path / "progress").read_text()

    answers = iter([client.Unreachable("squeue failed: down")] * 20)
    now[0], slept[:] = 0.0, []
    with pytest.raises(errors.WorkFailed, match="has not answered for"):
        wait.wait_for(str(batch_dir), [], poll=1.0, progress=open(os.devnull, "w"), patience=30,
                       clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))


@pytest.mark.parametrize("argv, message", [
    (["--slurm", "--nodes=0"], "--nodes"),
    (["--slurm", "--ntasks-per-node=x"], "--ntasks-per-node"),
    (["--dependency=afterok:1"], "add --slurm"),
    (["--live-code"], "add --slurm"),
    (["--slurm", "--dependency=afterok:1 afterok:2"], "--dependency"),
    (["--snapshot", "--slurm", "--live-code"], "contradict"),
])
def test_bad_cluster_options_exit_2(results_dir, argv, message):
    proc = tool("runbatch", *argv, input=lines([spec(results_dir, "r0", "true")]), check=2)
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and not (results_dir / "exp").exists()


def test_dry_run_shows_the_shape_of_a_run_of_several_processes(results_dir):
    proc = tool("runbatch", "--slurm", "--dry-run", "--nodes=2", "--gpus-per-node=4", "--dependency=afterok:12",
                input=lines([spec(results_dir, "r0", "true")]), check=0)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --dependency=afterok:12", "export RUNKIT_SLURM_SRUN=1"):
        assert line + "\n" in proc.stdout
    assert "export RUNKIT_CODE_SNAPSHOT=" in proc.stdout and not (results_dir / "exp").exists()
    live = tool("runbatch", "--slurm", "--dry-run", "--live-code", input=lines([spec(results_dir, "r0", "true")]),
                check=0)
    assert "RUNKIT_CODE_SNAPSHOT" not in live.stdout and "RUNKIT_SLURM_SRUN" not in live.stdout


def test_a_squeue_that_keeps_trying_is_said_while_waiting_for_it(tmp_path, monkeypatch):
    # SLURM's clients keep trying a controller that is restarting, rather than fail: that is said, not silent.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\nsleep 1\necho '7|0|COMPLETED|s'\n")
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(client, "SLOW", 0.2)
    said = []
    assert client.squeue(said.append) == {("7", "0"): ("COMPLETED", "s")} and said == [0.2]
