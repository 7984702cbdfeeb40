"""runbatch on generic jobs: outcomes, logs, idempotence, failures, retries, GPUs, dry run, two runners at once."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import tool
from helpers.grids import train_grid
from jobs.epochs import progress
from runkit.rundir import lock, runs


def spec(results_dir, name, *argv, **extra):
    return {"name": name, "run_dir": str(results_dir / name), "argv": list(argv), **extra}


def lines(specs):
    return "".join(json.dumps(s) + "\n" for s in specs)


def outcomes(proc):
    return {o["name"]: o for o in map(json.loads, proc.stdout.splitlines())}


def test_runs_jobs_logs_output_and_reports_each_outcome(results_dir):
    specs = [spec(results_dir, "ok", "sh", "-c", "echo out; echo err >&2"),
             spec(results_dir, "fails", "sh", "-c", "exit 3"),
             spec(results_dir, "killed", "sh", "-c", "kill -9 $$"),
             spec(results_dir, "missing", "no-such-command-xyz")]
    proc = tool("runbatch", "-j", "2", input=lines(specs), check=1)
    out = outcomes(proc)
    assert out["ok"]["status"] == "finished" and out["ok"]["exit_code"] == 0
    assert out["fails"]["status"] == "failed" and out["fails"]["exit_code"] == 3
    assert out["killed"]["status"] == "killed" and out["killed"]["signal"] == "SIGKILL"
    assert out["missing"]["status"] == "failed" and "no-such-command-xyz" in out["missing"]["reason"]
    assert all(o["duration"] >= 0 and o["attempts"] == 1 for o in out.values())
    assert set(out["ok"]) >= {"name", "run_dir", "status", "exit_code", "signal", "duration", "attempts", "reason"}
    ok = results_dir / "ok"
    assert (ok / runs.STDOUT).read_text() == "out\n" and (ok / runs.STDERR).read_text() == "err\n"
    assert runs.status(ok) == "finished"
    assert runs.status(results_dir / "fails") == "failed"
    assert runs.read_json(results_dir / "killed", runs.ERROR)["error"] == "killed by SIGKILL"
    assert "failed or were killed" in proc.stderr


def test_rerun_skips_finished_and_reruns_the_rest(results_dir):
    flag = results_dir / "flag"
    specs = [spec(results_dir, "a", "sh", "-c", "echo a >> ../count"),
             spec(results_dir, "b", "sh", "-c", f"test -e {flag}")]
    proc = tool("runbatch", input=lines(specs), check=1, cwd=results_dir / ".")
    assert outcomes(proc)["b"]["status"] == "failed"
    flag.touch()
    out = outcomes(tool("runbatch", input=lines(specs), check=0))
    assert out["a"] == {**out["a"], "status": "skipped", "reason": "finished", "attempts": 0}
    assert out["b"]["status"] == "finished"
    assert (results_dir / "b" / runs.STDOUT).exists() and not (results_dir / "b" / runs.ERROR).exists()


def test_retries(results_dir):
    counter = results_dir / "tries"
    job = spec(results_dir, "flaky", "sh", "-c", f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3")
    assert outcomes(tool("runbatch", "--retries", "1", input=lines([job]), check=1))["flaky"]["attempts"] == 2
    out = outcomes(tool("runbatch", "--retries", "5", input=lines([job]), check=0))["flaky"]
    assert out["status"] == "finished" and out["attempts"] == 1


def test_never_through_a_shell(results_dir):
    trap = results_dir / "pwned"
    job = spec(results_dir, "echo", "echo", f"; touch {trap}", "$(touch {trap})", "`touch {trap}`")
    tool("runbatch", input=lines([job]), check=0)
    assert not trap.exists()
    assert (results_dir / "echo" / runs.STDOUT).read_text().startswith("; touch")


def test_gpus_and_env(results_dir):
    specs = [spec(results_dir, f"g{i}", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES $RUNKIT_LOCK_FD $X"; sleep 0.3',
                  env={"X": str(i)}) for i in range(4)]
    out = outcomes(tool("runbatch", "--gpus", "3,5", input=lines(specs), check=0))
    assert {o["gpu"] for o in out.values()} == {"3", "5"}
    for i in range(4):
        gpu, fd, x = (results_dir / f"g{i}" / runs.STDOUT).read_text().split()
        assert gpu == out[f"g{i}"]["gpu"] and fd.isdigit() and x == str(i)


def test_jobs_share_the_cores(results_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    job = spec(results_dir, "omp", "sh", "-c", "echo $OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0))
    tool("runbatch", "-j", "2", input=lines([job]), check=0)
    assert (results_dir / "omp" / runs.STDOUT).read_text() == f"{max(1, cores // 2)}\n"
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    shutil.rmtree(results_dir / "omp")
    tool("runbatch", "-j", "2", input=lines([job]), check=0)
    assert (results_dir / "omp" / runs.STDOUT).read_text() == "7\n"


def test_the_child_holds_the_lock(results_dir):
    job = spec(results_dir, "slow", "sleep", "2")
    proc = subprocess.Popen(["runbatch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(lines([job]))
    proc.stdin.close()
    deadline = time.time() + 10
    while not (results_dir / "slow" / runs.STDOUT).exists() and time.time() < deadline:
        time.sleep(0.05)
    assert lock.is_locked(results_dir / "slow") and runs.status(results_dir / "slow") == "running"
    out = outcomes(tool("runbatch", input=lines([job]), check=0))
    assert out["slow"]["status"] == "skipped" and out["slow"]["reason"] == "running"
    assert proc.wait(timeout=20) == 0


def test_two_runbatch_on_the_same_specs_never_run_a_run_twice(results_dir):
    log = results_dir / "starts.log"
    specs = [spec(results_dir, f"r{i}", "sh", "-c", f"echo r{i} >> {log}; sleep 0.2") for i in range(12)]
    procs = [subprocess.Popen(["runbatch", "-j", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        p.stdin.write(lines(specs))
        p.stdin.close()
    results = [(p.wait(timeout=60), p.stdout.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0]
    started = log.read_text().split()
    assert sorted(started) == sorted(f"r{i}" for i in range(12))  # each run exactly once
    statuses = [json.loads(line)["status"] for _, out in results for line in out.splitlines()]
    assert statuses.count("finished") == 12 and statuses.count("skipped") == 12
    assert min(len(out.splitlines()) for _, out in results) == 12


def test_dry_run_prints_pending_specs_and_writes_nothing(results_dir):
    done = spec(results_dir, "done", "true")
    tool("runbatch", input=lines([done]), check=0)
    todo = spec(results_dir, "todo", "touch", str(results_dir / "ran"))
    proc = tool("runbatch", "--dry-run", input=lines([done, todo]), check=0)
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [todo]
    assert "would run 1 of 2" in proc.stderr
    assert not (results_dir / "todo").exists() and not (results_dir / "ran").exists()


@pytest.mark.parametrize("text,message", [
    ("not json\n", "line 2 of stdin is not JSON"),
    ('{"name": "a", "run_dir": "/tmp/x"}\n', "no 'argv'"),
    ('{"name": "../a", "run_dir": "RD", "argv": ["true"]}\n', "not safe as a file name"),
    ('{"name": "a", "run_dir": "RD", "argv": ["true"]}\n{"name": "b", "run_dir": "RD", "argv": ["true"]}\n',
     "is also spec 2"),
])
def test_bad_input_exits_2_and_runs_nothing(results_dir, text, message):
    text = ('{"name": "first", "run_dir": "%s", "argv": ["true"]}\n' % (results_dir / "first")
            + text.replace("RD", str(results_dir / "rd")))
    proc = tool("runbatch", input=text, check=2)
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1 and proc.stdout == ""
    assert os.listdir(results_dir) == []


def test_bad_options(results_dir):
    assert "-j must be" in tool("runbatch", "-j", "0", input="", check=2).stderr
    assert "--gpus" in tool("runbatch", "--gpus", "0,,1", input="", check=2).stderr
    assert "cannot read" in tool("runbatch", results_dir / "nope.jsonl", check=2).stderr


def test_imports_neither_torch_lightning_gin_nor_pandas(results_dir):
    # How fast it starts is bench/startup.py's to measure; what it imports decides it.
    job = lines([spec(results_dir, "t", "true")])
    proc = tool(sys.executable, "-X", "importtime", os.path.join(os.path.dirname(__file__), "..", "tools", "runbatch"),
                input=job, check=0)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "pytorch_lightning", "lightning", "pandas", "numpy", "gin"}


def test_sigterm_stops_the_batch_and_passes_one_sigterm_on(results_dir):
    job = 'trap "echo got TERM; exit 7" TERM; echo started; sleep 30 & wait'
    specs = [spec(results_dir, f"j{i}", "sh", "-c", job) for i in range(3)]
    proc = subprocess.Popen(["runbatch", "-j", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(lines(specs))
    proc.stdin.close()
    deadline = time.time() + 10
    logs = [results_dir / f"j{i}" / runs.STDOUT for i in range(2)]
    while not all(log.exists() and log.read_text() for log in logs) and time.time() < deadline:
        time.sleep(0.05)
    proc.terminate()
    proc.wait(timeout=20)
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 1 and err.startswith("runbatch: interrupted")
    out = {o["name"]: o for o in map(json.loads, out.splitlines())}
    assert {n: (o["status"], o["exit_code"]) for n, o in out.items()} == {
        "j0": ("failed", 7), "j1": ("failed", 7), "j2": ("skipped", None)}
    assert out["j2"]["reason"] == "interrupted" and not (results_dir / "j2").exists()
    assert all(log.read_text() == "started\ngot TERM\n" for log in logs)


def test_a_run_folder_that_cannot_be_made_fails_that_run_only(results_dir):
    (results_dir / "file").write_text("")
    specs = [spec(results_dir, "ok", "true"), {"name": "bad", "run_dir": str(results_dir / "file" / "bad"),
                                               "argv": ["true"]}]
    out = outcomes(tool("runbatch", input=lines(specs), check=1))
    assert out["ok"]["status"] == "finished"
    assert out["bad"]["status"] == "failed" and "Not a directory" in out["bad"]["reason"]


def test_progress_bar_only_when_asked_or_on_a_terminal(results_dir):
    specs = lines([spec(results_dir, f"p{i}", "true") for i in range(3)])
    assert tool("runbatch", input=specs, check=0).stderr == ""  # stderr is a pipe here
    shutil.rmtree(results_dir)
    bar = tool("runbatch", "--progress", "always", input=specs, check=0).stderr
    assert bar.lstrip().startswith("[") and "3/3  running 0  failed 0" in bar  # text mode reads \r as \n


EPOCHS = os.path.join(os.path.dirname(__file__), "jobs", "epochs.py")
GRID = """\
experiment: exp
configs: [base.gin]
command: [{python}, {job}, "{{run_dir}}", "{{configs}}", "{{bindings}}"]
fixed: {{training_loop.n_epochs: {epochs}, optimizer.momentum: {momentum}}}
grid: {{optimizer.lr: [0.1, 0.01]}}
"""


def sweep(tmp_path, *flags, epochs=1, momentum=0.9, check=0):
    """gridgen GRID | runbatch FLAGS, with the stand-in job: {name: outcome}."""
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(python=sys.executable, job=EPOCHS, epochs=epochs, momentum=momentum))
    specs = tool("gridgen", path, check=0).stdout
    return outcomes(tool("runbatch", *flags, input=specs, check=check))


def epochs(results_dir, name):
    return progress(results_dir / "exp" / name)


def test_a_changed_spec_is_a_conflict_and_more_epochs_a_continuation(tmp_path, results_dir):
    (tmp_path / "base.gin").write_text("# the model\nmlp.hidden = (64,)\n")
    assert {o["status"] for o in sweep(tmp_path).values()} == {"finished"}
    assert epochs(results_dir, "lr=0.1") == {"starts": 1, "epochs": [[1, 1, 0.9]]}

    # More epochs: train resumes the finished run (never skipped as finished, never started over).
    assert {o["status"] for o in sweep(tmp_path, epochs=2).values()} == {"finished"}
    assert epochs(results_dir, "lr=0.1") == {"starts": 2, "epochs": [[1, 1, 0.9], [2, 2, 0.9]]}
    assert {o["reason"] for o in sweep(tmp_path, epochs=2).values()} == {"finished"}

    # Another binding: a conflict naming it; the folder is left as it was.
    before = (results_dir / "exp" / "lr=0.1" / runs.HISTORY).read_text()
    out = sweep(tmp_path, epochs=2, momentum=0.5, check=1)
    assert {o["status"] for o in out.values()} == {"conflict"}
    assert out["lr=0.1"]["changed"] == ["optimizer.momentum: 0.9 -> 0.5"]
    assert out["lr=0.1"]["attempts"] == 0 and "optimizer.momentum: 0.9 -> 0.5" in out["lr=0.1"]["reason"]
    assert (results_dir / "exp" / "lr=0.1" / runs.HISTORY).read_text() == before
    assert runs.status(results_dir / "exp" / "lr=0.1") == "finished"

    # A config file's bindings (not its comments) count too.
    (tmp_path / "base.gin").write_text("# the model, wider\nmlp.hidden = (64,)\n")
    assert {o["reason"] for o in sweep(tmp_path, epochs=2).values()} == {"finished"}
    (tmp_path / "base.gin").write_text("mlp.hidden = (128,)\n")
    out = sweep(tmp_path, epochs=2, check=1)
    assert out["lr=0.1"]["status"] == "conflict" and "base.gin" in out["lr=0.1"]["reason"]

    # Deliberately: --restart-changed clears the run and starts it over with the new spec.
    out = sweep(tmp_path, "--restart-changed", epochs=2, momentum=0.5)
    assert {o["status"] for o in out.values()} == {"finished"}
    assert epochs(results_dir, "lr=0.1") == {"starts": 1, "epochs": [[1, 1, 0.5], [2, 1, 0.5]]}
    assert {o["reason"] for o in sweep(tmp_path, epochs=2, momentum=0.5).values()} == {"finished"}


def test_a_folder_train_made_by_hand_is_compared_by_its_bindings(tmp_path, results_dir):
    (tmp_path / "base.gin").write_text("")
    run_dir = results_dir / "exp" / "lr=0.1"
    run_dir.mkdir(parents=True)
    tool(sys.executable, EPOCHS, run_dir, "-b", "optimizer.lr=0.1", "-b", "optimizer.momentum=0.9",
         "-b", "training_loop.n_epochs=1", check=0)
    runs.mark_finished(run_dir)
    out = sweep(tmp_path, momentum=0.5, check=1)
    assert out["lr=0.1"]["changed"] == ["optimizer.momentum: 0.9 -> 0.5"]
    assert out["lr=0.01"]["status"] == "finished"
    assert sweep(tmp_path, check=1)["lr=0.1"]["reason"] == "finished"  # lr=0.01 now conflicts the other way


def test_dry_run_names_conflicts_and_lists_continuations(tmp_path, results_dir):
    (tmp_path / "base.gin").write_text("")
    sweep(tmp_path)
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(python=sys.executable, job=EPOCHS, epochs=3, momentum=0.9))
    proc = tool("runbatch", "--dry-run", input=tool("gridgen", path, check=0).stdout, check=0)
    assert len(proc.stdout.splitlines()) == 2 and "would run 2 of 2" in proc.stderr
    path.write_text(GRID.format(python=sys.executable, job=EPOCHS, epochs=1, momentum=0.1))
    proc = tool("runbatch", "--dry-run", input=tool("gridgen", path, check=0).stdout, check=0)
    assert proc.stdout == "" and proc.stderr.count("conflict: optimizer.momentum: 0.9 -> 0.1") == 2


def test_a_grown_grid_reruns_only_the_new_runs(tmp_path, results_dir):
    (tmp_path / "base.gin").write_text("")
    sweep(tmp_path)
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(python=sys.executable, job=EPOCHS, epochs=1, momentum=0.9)
                    .replace("grid: {optimizer.lr: [0.1, 0.01]}",
                             "grid: {optimizer.lr: [0.1, 0.01, 1.0], optimizer.momentum: [0.9, 0.5]}"))
    out = outcomes(tool("runbatch", input=tool("gridgen", path, check=0).stdout, check=0))
    assert sorted(n for n, o in out.items() if o["status"] == "finished") == [
        "lr=0.01_momentum=0.5", "lr=0.1_momentum=0.5", "lr=1.0", "lr=1.0_momentum=0.5"]
    assert out["lr=0.1"]["reason"] == out["lr=0.01"]["reason"] == "finished"


@pytest.mark.slow
def test_a_run_stopped_by_a_signal_is_stopped_everywhere(tmp_path, results_dir):
    job = spec(results_dir, "r0", sys.executable, EPOCHS, str(results_dir / "r0"), "-b", "training_loop.n_epochs=50",
               "-b", "job.sleep=0.2")
    proc = subprocess.Popen(["runbatch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdin.write(lines([job]))
    proc.stdin.close()
    deadline = time.time() + 30
    while not progress(results_dir / "r0")["epochs"] and time.time() < deadline:
        time.sleep(0.05)
    proc.terminate()  # runbatch passes one SIGTERM on; the job stops after its epoch and exits 143
    assert proc.wait(timeout=30) == 1
    out = json.loads(proc.stdout.read())
    assert (out["status"], out["exit_code"], out["signal"]) == ("stopped", 143, "SIGTERM")
    assert runs.status(results_dir / "r0") == "stopped" and not (results_dir / "r0" / runs.ERROR).exists()
    table = tool("collect", "--format", "jsonl", results_dir, check=0)
    assert json.loads(table.stdout)["status"] == "stopped"
    out = outcomes(tool("runbatch", input=lines([dict(job, argv=job["argv"][:-2] + ["-b", "job.sleep=0"])]),
                        check=1))  # job.sleep is a binding too: changing it is a conflict
    assert out["r0"]["status"] == "conflict"
    out = outcomes(tool("runbatch", input=lines([job]), check=0))  # rerun resumes it
    assert out["r0"]["status"] == "finished" and progress(results_dir / "r0")["starts"] == 2


PROBER = """\
import fcntl, os, sys, time
from runkit.rundir import lock, runs
flock = fcntl.flock
def slow_flock(fd, operation):  # a probe process descheduled while it holds what it took (a busy machine)
    flock(fd, operation)
    time.sleep(0.005)
fcntl.flock = slow_flock
while True:  # probe, as collect does, the runs that runbatch is about to claim: the next ones not started
    for d in [d for d in sys.argv[1:] if not os.path.exists(os.path.join(d, runs.STDOUT))][:2]:
        lock.is_locked(d)
"""


def test_a_status_probe_never_makes_runbatch_skip_a_run(results_dir):
    specs = [spec(results_dir, f"r{i}", "true") for i in range(30)]
    for s in specs:
        os.makedirs(s["run_dir"])
        os.close(lock.try_lock(s["run_dir"]))  # a lock file to probe
    prober = subprocess.Popen([sys.executable, "-c", PROBER, *(s["run_dir"] for s in specs)])
    try:
        out = outcomes(tool("runbatch", "-j", "2", input=lines(specs), check=0))
    finally:
        prober.kill()
        prober.wait()
    assert [n for n, o in out.items() if o["status"] != "finished"] == []


def test_a_job_killed_outside_runbatch_is_not_running(results_dir):
    # What train does when run by hand: take the run's lock, keep HEARTBEAT fresh; then kill -9.
    run_dir = results_dir / "by_hand"
    code = ("import sys, time\nfrom runkit.rundir import lock, runs\nfd = lock.try_lock(sys.argv[1])\n"
            "runs.touch(sys.argv[1], runs.HEARTBEAT)\nprint('ready', flush=True)\ntime.sleep(60)")
    job = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "ready\n"
    assert runs.status(run_dir) == "running"
    job.kill()
    job.wait()
    table = tool("collect", "--format", "jsonl", results_dir, check=0)
    assert json.loads(table.stdout)["status"] == "dead"  # not 'running' for the next minute
    out = outcomes(tool("runbatch", input=lines([spec(results_dir, "by_hand", "true")]), check=0))
    assert out["by_hand"]["status"] == "finished"


def site(tmp_path, code):
    """A sitecustomize that changes the platform under a tool (a file system, an OS) for one test."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(code)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), os.environ["PYTHONPATH"]]))


def test_a_file_system_without_locks_is_one_line_and_exit_2(tmp_path, results_dir):
    env = site(tmp_path, "import errno, fcntl\n"
                         "def flock(fd, op): raise OSError(errno.ENOSYS, 'Function not implemented')\n"
                         "fcntl.flock = flock\n")
    specs = [spec(results_dir / "exp", f"r{i}", "true") for i in range(3)]
    for flags in ([], ["--slurm", "--dry-run"]):
        proc = tool("runbatch", *flags, input=lines(specs), env=env, check=2)
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "cannot lock files in" in proc.stderr and "-o flock" in proc.stderr
        assert os.listdir(results_dir) == []


def test_runs_where_the_os_cannot_say_which_cores_it_may_use(tmp_path, results_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = site(tmp_path, "import os\ndel os.sched_getaffinity\n")  # as on macOS
    out = outcomes(tool("runbatch", input=lines([spec(results_dir, "r0", "sh", "-c", "echo $OMP_NUM_THREADS")]),
                        env=env, check=0))
    assert out["r0"]["status"] == "finished"
    assert (results_dir / "r0" / runs.STDOUT).read_text() == f"{os.cpu_count()}\n"


@pytest.mark.slow
def test_train_continues_a_finished_sweep_and_refuses_a_changed_one(tmp_path, results_dir, one_thread):
    from conftest import without_time
    path = tmp_path / "grid.yaml"

    def sweep_train(epochs, momentum, *flags, check=0):
        train_grid(path, "digits", {"training_loop.n_epochs": epochs, "optimizer.momentum": momentum},
                   {"optimizer.lr": [0.05]})
        return outcomes(tool("runbatch", *flags, input=tool("gridgen", path, check=0).stdout, check=check))["lr=0.05"]

    run_dir = results_dir / "digits" / "lr=0.05"
    assert sweep_train(1, 0.9)["status"] == "finished"
    first = without_time(runs.read_history(run_dir))
    assert sweep_train(2, 0.9)["status"] == "finished"  # train resumed the finished run for one more epoch
    history = without_time(runs.read_history(run_dir))
    assert len(history) == 2 and history[:1] == first
    out = sweep_train(2, 0.5, check=1)
    assert out["status"] == "conflict" and out["changed"] == ["optimizer.momentum: 0.9 -> 0.5"]
    assert sweep_train(2, 0.5, "--restart-changed")["status"] == "finished"
    assert runs.load_C(run_dir)["optimizer.momentum"] == 0.5 and len(runs.read_history(run_dir)) == 2
