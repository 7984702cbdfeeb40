"""Warm runs (docs/warm-runs.md): `train` forked from runbatch's zygote is a `train` process in every way a
user can see: the same history and metrics as a cold one, resumable after kill -9, stopped by runbatch's
SIGTERM after a checkpoint, the same one-line error for a config whose import fails; and nothing is left
behind when runbatch ends or is killed."""
import json
import os
import signal
import subprocess

import pytest

from conftest import REPO, tool
from helpers.same_run import assert_same_run
from helpers.waiting import wait_for
from runkit.rundir import runs

pytestmark = pytest.mark.slow


def train_spec(results_dir, name, epochs=3, seed=0, config=None, **extra):
    run_dir = results_dir / name
    return {"name": name, "run_dir": str(run_dir),
            "argv": ["train", str(run_dir), str(config or REPO / "configs" / "digits_mlp.gin"),
                     "-b", f"training_loop.n_epochs={epochs}", "-b", f"training_loop.seed={seed}",
                     "-b", "training_loop.loggers=()"], **extra}


def lines(specs):
    return "".join(json.dumps(s) + "\n" for s in specs)


def outcomes(text):
    return {o["name"]: o for o in map(json.loads, text.splitlines())}


def start(specs, *flags):
    path = os.path.join(os.path.dirname(specs[0]["run_dir"]), "specs.jsonl")
    with open(path, "w") as f:
        f.write(lines(specs))
    return subprocess.Popen(["runbatch", *flags, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def children(pid):
    """The live processes whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def zygote_of(pid):
    for child in children(pid):
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"runkit.training.zygote" in f.read():
                return child
    return None


def run_pid(runner, run_dir):
    """The child of runner that holds run_dir's lock: the run's process."""
    lock = os.path.realpath(runs.path(run_dir, runs.LOCK))
    for child in children(runner):
        try:
            if any(os.path.realpath(f"/proc/{child}/fd/{fd}") == lock for fd in os.listdir(f"/proc/{child}/fd")):
                return child
        except OSError:
            continue
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_warm_and_cold_give_equal_results_and_a_warm_run_killed_with_9_resumes_exactly(results_dir, one_thread):
    killed = train_spec(results_dir, "killed", epochs=6)
    proc = start([train_spec(results_dir, "warm", epochs=6), killed], "-j", "2")
    wait_for(lambda: len(runs.read_history(killed["run_dir"])) >= 2, "two epochs", timeout=300)
    os.kill(run_pid(proc.pid, killed["run_dir"]), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    first = outcomes(out)
    assert first["warm"]["status"] == "finished" and first["warm"]["warm"] is True, err
    assert first["killed"]["status"] == "killed" and first["killed"]["signal"] == "SIGKILL"
    assert runs.status(killed["run_dir"]) == "failed"

    again = outcomes(tool("runbatch", input=lines([killed]), check=0).stdout)["killed"]
    assert again["status"] == "finished" and again["warm"] is True
    cold = outcomes(tool("runbatch", "--cold", input=lines([train_spec(results_dir, "cold", epochs=6)]),
                         check=0).stdout)["cold"]
    assert cold["status"] == "finished" and "warm" not in cold
    assert_same_run(results_dir / "warm", results_dir / "cold")
    assert_same_run(results_dir / "killed", results_dir / "cold")
    meta = runs.read_json(results_dir / "warm", runs.META)
    assert meta["argv"][0] == str(REPO / "tools" / "train")
    assert meta["hash_seed"] is not None and meta["hash_seed"] == runs.read_json(results_dir / "cold", runs.META)["hash_seed"]


def test_sigterm_to_runbatch_stops_warm_runs_after_a_checkpoint_and_leaves_nothing(results_dir, one_thread):
    specs = [train_spec(results_dir, f"r{i}", epochs=200, seed=i) for i in range(2)]
    proc = start(specs, "-j", "2")
    wait_for(lambda: all(runs.read_history(s["run_dir"]) for s in specs), "an epoch of each run", timeout=300)
    zygote = zygote_of(proc.pid)
    assert zygote and len(os.listdir(f"/proc/{zygote}/task")) == 1  # no thread pool in the warm process
    pids = [run_pid(proc.pid, s["run_dir"]) for s in specs]
    assert sorted(children(proc.pid)) == sorted([zygote, *pids])  # the runs are runbatch's own children
    assert all(os.getpgid(p) == p and os.getsid(p) == p for p in pids)  # each its own session, as cold
    proc.terminate()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "interrupted" in err
    for s in specs:
        o = outcomes(out)[s["name"]]
        assert (o["status"], o["exit_code"], o["signal"], o["warm"]) == ("stopped", 143, "SIGTERM", True)
        assert runs.status(s["run_dir"]) == "stopped" and os.path.exists(runs.checkpoint_path(s["run_dir"]))
    assert not alive(zygote) and not any(alive(p) for p in pids)


def test_runbatch_killed_with_9_takes_its_warm_process_along(results_dir, one_thread):
    spec = train_spec(results_dir, "r", epochs=3)
    proc = start([spec])
    wait_for(lambda: os.path.exists(runs.path(spec["run_dir"], runs.META)), "the run's start", timeout=300)
    zygote = zygote_of(proc.pid)
    run = run_pid(proc.pid, spec["run_dir"])
    proc.kill()
    proc.communicate()
    wait_for(lambda: not alive(zygote), "the zygote's end", timeout=10)  # PR_SET_PDEATHSIG
    wait_for(lambda: not alive(run), "the run's end", timeout=300)  # the run goes on to its end, as a cold one does
    assert runs.status(spec["run_dir"]) == "finished"


def test_a_dead_warm_process_is_restarted(results_dir, one_thread):
    specs = [train_spec(results_dir, f"r{i}", epochs=1, seed=i) for i in range(3)]
    proc = start(specs)
    wait_for(lambda: os.path.exists(runs.path(specs[0]["run_dir"], runs.META)), "the first run's start", timeout=300)
    os.kill(zygote_of(proc.pid), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "restarting it" in err
    assert all(o["status"] == "finished" and o["warm"] for o in outcomes(out).values())


def test_a_config_whose_import_fails_runs_cold_with_the_same_one_line_error(tmp_path, results_dir, one_thread):
    config = tmp_path / "broken.gin"
    config.write_text("import no_such_module_here\n" + (REPO / "configs" / "digits_mlp.gin").read_text())
    errors = {}
    for flags in ((), ("--cold",)):
        name = "cold" if flags else "warm"
        done = tool("runbatch", *flags, input=lines([train_spec(results_dir, name, config=config)]), check=1)
        o = outcomes(done.stdout)[name]
        assert (o["status"], o["exit_code"]) == ("failed", 2) and "warm" not in o
        errors[name] = (results_dir / name / runs.STDERR).read_text()
        if not flags:
            assert "no_such_module_here start cold" in done.stderr
    assert errors["warm"] == errors["cold"] and len(errors["warm"].splitlines()) == 1
    assert "no_such_module_here" in errors["warm"]
