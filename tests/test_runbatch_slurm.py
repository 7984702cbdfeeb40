"""runbatch --slurm on the local cluster with quick stand-in jobs: the batch folder, throttling,
resubmission, failures, bad options. (test_slurm_train.py runs real training through it.)"""
import json
import os
import subprocess
import sys

import pytest

from conftest import tool
from jobs.epochs import progress
from runkit.rundir import runs
from slurm_cluster import slurm_cluster, squeue_state, wait_until, warn_and_restart  # noqa: F401 - fixture

slurm = pytest.mark.slurm


def spec(results_dir, name, *argv):
    return {"name": name, "run_dir": str(results_dir / "exp" / name), "argv": list(argv), "experiment": "exp"}


def lines(specs):
    return "".join(json.dumps(s) + "\n" for s in specs)


def outcomes(proc):
    return {o["name"]: o for o in map(json.loads, proc.stdout.splitlines())}


def python(code):
    return [sys.executable, "-c", code]


@slurm
def test_submits_one_array_keeps_its_script_and_logs_next_to_each_run(slurm_cluster, results_dir):  # noqa: F811
    specs = [spec(results_dir, f"r{i}", *python(f"print('hello from {i}')")) for i in range(3)]
    proc = tool("runbatch", "--slurm", "--time=5", input=lines(specs), check=0)
    submitted = json.loads(proc.stdout)
    assert submitted["runs"] == 3 and submitted["skipped"] == 0 and submitted["job_id"].isdigit()
    batch_dir = submitted["batch_dir"]
    assert os.path.dirname(batch_dir) == str(results_dir / "exp" / "batches")
    script = open(os.path.join(batch_dir, "job.sbatch")).read()
    assert "#SBATCH --array=0-2\n" in script and "#SBATCH --time=5\n" in script and "--requeue" in script
    assert [json.loads(line)["name"] for line in open(os.path.join(batch_dir, "specs.jsonl"))] == ["r0", "r1", "r2"]
    wait_until(lambda: all(squeue_state(f"{submitted['job_id']}_{t}")[:1] == ["COMPLETED"] for t in range(3)))
    for task, s in enumerate(specs):
        assert runs.status(s["run_dir"]) == "finished"
        log = os.path.join(s["run_dir"], f"slurm-{submitted['job_id']}_{task}.log")
        assert open(log).read() == f"hello from {task}\n"
        attempt = runs.read_slurm(s["run_dir"])["attempts"][-1]
        assert (attempt["job_id"], attempt["task_id"], attempt["exit_code"]) == (submitted["job_id"], str(task), 0)


@slurm
def test_wait_reports_outcomes_and_failures_and_collect_agrees(slurm_cluster, results_dir):  # noqa: F811
    specs = [spec(results_dir, "ok", *python("print('fine')")),
             spec(results_dir, "fails", *python("import sys; sys.exit(3)")),
             spec(results_dir, "missing", "no-such-command-xyz")]
    proc = tool("runbatch", "--slurm", "--wait", "--poll=0.5", input=lines(specs), check=1)
    got = outcomes(proc)
    assert got["ok"]["status"] == "finished" and got["ok"]["exit_code"] == 0
    assert got["fails"]["status"] == "failed" and got["fails"]["exit_code"] == 3
    assert got["missing"]["status"] == "failed" and "no-such-command-xyz" in got["missing"]["reason"]
    assert "of 3 tasks queued or running" in proc.stderr and "2 of 3 runs failed" in proc.stderr
    table = tool("collect", "--format", "jsonl", results_dir / "exp", check=0)
    status = {row["name"]: row["status"] for row in map(json.loads, table.stdout.splitlines())}
    assert status == {"ok": "finished", "fails": "failed", "missing": "failed"}
    # A failure is not requeued: each task ran once.
    assert [len(runs.read_slurm(s["run_dir"])["attempts"]) for s in specs] == [1, 1, 1]


@slurm
def test_throttle_caps_the_tasks_running_at_once(slurm_cluster, results_dir, tmp_path):  # noqa: F811
    # Each job appends its start and end time; the cluster has room for 2, the throttle allows 1 at once.
    stamps = tmp_path / "stamps"
    code = ("import sys, time; f = open(sys.argv[1], 'a'); f.write(f'{time.time()} 1\\n'); f.flush(); "
            "time.sleep(1.5); f.write(f'{time.time()} -1\\n')")
    specs = [spec(results_dir, f"r{i}", sys.executable, "-c", code, str(stamps)) for i in range(3)]
    tool("runbatch", "--slurm", "--wait", "--poll=0.5", "--throttle=1", input=lines(specs), check=0)
    running, most = 0, 0
    for _stamp, step in sorted(tuple(map(float, line.split())) for line in stamps.read_text().splitlines()):
        running += step
        most = max(most, running)
    assert most == 1 and len(stamps.read_text().splitlines()) == 6


@slurm
def test_resubmission_skips_finished_and_queued_runs(slurm_cluster, results_dir):  # noqa: F811
    specs = [spec(results_dir, f"r{i}", *python("import time; time.sleep(6)")) for i in range(2)]
    first = json.loads(tool("runbatch", "--slurm", input=lines(specs), check=0).stdout)
    again = tool("runbatch", "--slurm", input=lines(specs), check=0)
    assert json.loads(again.stdout) == {"job_id": None, "job_ids": [], "batch_dir": None, "runs": 0, "skipped": 2,
                                       "conflicts": 0}
    table = tool("collect", "--format", "jsonl", results_dir / "exp", check=0)  # queued or running: listed
    assert {row["status"] for row in map(json.loads, table.stdout.splitlines())} <= {"incomplete", "running"}
    assert len(table.stdout.splitlines()) == 2
    wait_until(lambda: all(runs.status(s["run_dir"]) == "finished" for s in specs))
    more = specs + [spec(results_dir, "new", *python("pass"))]
    proc = tool("runbatch", "--slurm", "--wait", "--poll=0.5", input=lines(more), check=0)
    got = outcomes(proc)
    assert got["r0"]["reason"] == got["r1"]["reason"] == "finished" and got["new"]["status"] == "finished"
    assert len(os.listdir(os.path.dirname(first["batch_dir"]))) == 2  # one batch folder per submission


@slurm
def test_options_sbatch_rejects_are_usage_errors_and_write_nothing(slurm_cluster, results_dir):  # noqa: F811
    specs = [spec(results_dir, "r0", *python("pass"))]
    proc = tool("runbatch", "--slurm", "--partition=no-such-partition", input=lines(specs), check=2)
    assert "sbatch rejects the job" in proc.stderr and "partition" in proc.stderr.lower()
    assert not (results_dir / "exp").exists()


def test_dry_run_prints_the_script_and_writes_nothing(results_dir, monkeypatch):
    monkeypatch.setenv("RUNBATCH_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("RUNBATCH_SLURM_EXTRA", "--constraint=a100 --exclusive")
    specs = [spec(results_dir, "r0", "echo", "$HOME; rm -rf /")]
    proc = tool("runbatch", "--slurm", "--dry-run", "--throttle=3", "--gres=gpu:1", "--mem=4G",
                "--sbatch=--mail-type=END", input=lines(specs), check=0)
    script = proc.stdout
    for line in ("#SBATCH --array=0-0%3", "#SBATCH --partition=gpu", "#SBATCH --gres=gpu:1", "#SBATCH --mem=4G",
                 "#SBATCH --constraint=a100", "#SBATCH --exclusive", "#SBATCH --mail-type=END",
                 "#SBATCH --signal=B:USR1@120", "#SBATCH --requeue", "#SBATCH --open-mode=append"):
        assert line + "\n" in script
    assert "rm -rf" not in script  # spec values never reach a shell: the task reads them from specs.jsonl
    assert script.splitlines()[-1].startswith("exec ") and "would submit 1 of 1" in proc.stderr
    assert not (results_dir / "exp").exists()


@pytest.mark.parametrize("argv, message", [
    (["--slurm", "--throttle=0"], "--throttle"),
    (["--slurm", "-j", "2"], "--throttle"),
    (["--wait"], "add --slurm"),
    (["--partition=gpu"], "add --slurm"),
    (["--slurm", "--sbatch=constraint"], "sbatch flags"),
])
def test_bad_options_exit_2(results_dir, argv, message):
    proc = tool("runbatch", *argv, input=lines([spec(results_dir, "r0", "true")]), check=2)
    assert message in proc.stderr and not (results_dir / "exp").exists()


STEPS = os.path.join(os.path.dirname(__file__), "jobs", "steps.py")


@slurm
def test_warning_signal_requeues_the_task_and_it_resumes(slurm_cluster, results_dir):  # noqa: F811
    s = spec(results_dir, "r0", sys.executable, STEPS, str(results_dir / "exp" / "r0"), "25")
    job = json.loads(tool("runbatch", "--slurm", input=lines([s]), check=0).stdout)["job_id"]
    wait_until(lambda: runs.read_json(s["run_dir"], "count.json", {"count": 0})["count"] >= 3)
    warn_and_restart(f"{job}_0")
    wait_until(lambda: squeue_state(f"{job}_0")[:1] == ["COMPLETED"])
    assert runs.status(s["run_dir"]) == "finished"
    count = runs.read_json(s["run_dir"], "count.json")
    assert count == {"count": 25, "starts": 2}
    attempts = runs.read_slurm(s["run_dir"])["attempts"]
    assert [(a["status"], a["restart_count"]) for a in attempts] == [("stopped", 0), ("finished", 1)]
    log = open(os.path.join(s["run_dir"], f"slurm-{job}_0.log")).read()
    assert "DUE TO JOB REQUEUE" in log  # SLURM's own message lands in the run's log too


@slurm
def test_a_task_requeued_too_often_fails_instead_of_looping(slurm_cluster, results_dir):  # noqa: F811
    s = spec(results_dir, "r0", sys.executable, STEPS, str(results_dir / "exp" / "r0"), "100")
    job = json.loads(tool("runbatch", "--slurm", "--max-requeues=0", input=lines([s]), check=0).stdout)["job_id"]
    wait_until(lambda: runs.read_json(s["run_dir"], "count.json", {"count": 0})["count"] >= 2)
    warn_and_restart(f"{job}_0")
    wait_until(lambda: runs.status(s["run_dir"]) == "failed")
    assert "requeued 1 time (limit 0" in runs.read_json(s["run_dir"], runs.ERROR)["error"]
    wait_until(lambda: squeue_state(f"{job}_0")[:1] == ["FAILED"])


EPOCHS = os.path.join(os.path.dirname(__file__), "jobs", "epochs.py")


def epochs_spec(results_dir, name, *bindings):
    run_dir = str(results_dir / "exp" / name)
    argv = [sys.executable, EPOCHS, run_dir, *(w for b in bindings for w in ("-b", b))]
    return {"name": name, "run_dir": run_dir, "argv": argv, "experiment": "exp"}


@slurm
def test_resubmission_compares_each_spec_with_its_folder(slurm_cluster, results_dir):  # noqa: F811
    def submit(*flags, momentum=0.9, n_epochs=1, check=0):
        specs = [epochs_spec(results_dir, f"r{i}", f"optimizer.lr={i}", f"optimizer.momentum={momentum}",
                             f"training_loop.n_epochs={n_epochs}") for i in range(2)]
        return outcomes(tool("runbatch", "--slurm", "--wait", "--poll=0.5", *flags, input=lines(specs), check=check))

    def history(name):
        return progress(results_dir / "exp" / name)

    assert {o["status"] for o in submit().values()} == {"finished"}
    got = submit(momentum=0.5, check=1)  # a changed binding: not submitted, named
    assert {o["status"] for o in got.values()} == {"conflict"}
    assert got["r0"]["changed"] == ["optimizer.momentum: 0.9 -> 0.5"] and history("r0")["starts"] == 1
    assert {o["status"] for o in submit(n_epochs=2).values()} == {"finished"}  # more epochs: continued
    assert history("r0") == {"starts": 2, "epochs": [[1, 1, 0.9], [2, 2, 0.9]]}
    got = submit("--restart-changed", momentum=0.5, n_epochs=2)  # deliberately: cleared in the task, rerun
    assert {o["status"] for o in got.values()} == {"finished"}
    assert history("r0") == {"starts": 1, "epochs": [[1, 1, 0.5], [2, 1, 0.5]]}
    assert {o["reason"] for o in submit(momentum=0.5, n_epochs=2).values()} == {"finished"}


ENDINGS = {"ok": ("exit 0", "finished"), "fails": ("exit 3", "failed"),
           "stopped": ("exit 143", "stopped"),  # what train does after a checkpoint on SIGTERM: 128 + 15
           "killed": ("kill -9 $$", "failed")}


@slurm
def test_every_runner_leaves_the_same_status_for_the_same_ending(slurm_cluster, results_dir):  # noqa: F811
    for runner in (["-j", "2"], ["--slurm", "--wait", "--poll=0.5"]):
        specs = [spec(results_dir, f"{name}{runner[0]}", "sh", "-c", code) for name, (code, _) in ENDINGS.items()]
        got = outcomes(tool("runbatch", *runner, input=lines(specs), check=1))
        for name, (_, status) in ENDINGS.items():
            assert runs.status(results_dir / "exp" / f"{name}{runner[0]}") == status, (runner, name)
        assert got[f"stopped{runner[0]}"]["status"] == "stopped"


@slurm
def test_a_run_the_warning_stopped_is_stopped(slurm_cluster, results_dir):  # noqa: F811
    s = epochs_spec(results_dir, "r0", "training_loop.n_epochs=100", "job.sleep=0.2")
    job = json.loads(tool("runbatch", "--slurm", input=lines([s]), check=0).stdout)["job_id"]
    wait_until(lambda: len(progress(s["run_dir"])["epochs"]) >= 2)
    subprocess.run(["scancel", "--signal=USR1", "--batch", f"{job}_0"], check=True, timeout=60)
    wait_until(lambda: runs.status(s["run_dir"]) == "stopped")
    attempt = runs.read_slurm(s["run_dir"])["attempts"][-1]
    assert (attempt["status"], attempt["exit_code"], attempt["signal"]) == ("stopped", 138, "SIGUSR1")
    table = tool("collect", "--format", "jsonl", results_dir / "exp", check=0)
    assert json.loads(table.stdout)["status"] == "stopped"
