"""The tests' warm `train` (the `warm` fixture, tests/helpers/warm.py) is what the tests that use it need it
to be: the same run folder as a cold `train`, a process of ours that kill -9 ends with -9, a zygote that comes
back when it died, and a refusal where a warm run could not see what the test set."""
import json
import os
import signal
import time

import pytest

from conftest import REPO, tool, without_time
from runkit.rundir import runs

MLP = REPO / "configs" / "digits_mlp.gin"
SHORT = "training_loop.n_epochs=2#training_loop.loggers=[]#training_loop.checkpoint_every_n_steps=20"


def results(run):
    metrics = runs.read_json(run, runs.METRICS)
    for row in (metrics["final"], metrics["best"]):
        row.pop("time")
    return without_time(runs.read_history(run)), metrics


def test_a_warm_run_writes_what_the_same_cold_run_writes(warm, tmp_path, one_thread):
    done = warm.train(tmp_path / "warm", MLP, "-b", SHORT, check=0)
    cold = tool("train", tmp_path / "cold", MLP, "-b", SHORT, check=0)
    assert results(tmp_path / "warm") == results(tmp_path / "cold")
    assert json.loads(done.stdout)["final"]["val_acc"] == json.loads(cold.stdout)["final"]["val_acc"]
    warm_meta, cold_meta = (runs.read_json(tmp_path / name, runs.META) for name in ("warm", "cold"))
    assert warm_meta["argv"][0] == cold_meta["argv"][0] == str(REPO / "tools" / "train")
    assert sorted(os.listdir(tmp_path / "warm")) == sorted(os.listdir(tmp_path / "cold"))


def test_kill_9_ends_a_warm_run_as_it_ends_a_cold_one(warm, tmp_path):
    run = warm.start(["train", tmp_path / "run", MLP, "-b", "training_loop.n_epochs=1000"])
    while not runs.read_history(tmp_path / "run") and run.poll() is None:
        time.sleep(0.05)
    run.kill()
    _out, err = run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL and "epoch 1/1000" in err
    assert runs.status(tmp_path / "run") != "finished"


def test_a_dead_warm_process_is_started_again(warm, tmp_path):
    warm.train(tmp_path / "first", MLP, "-b", "training_loop.n_epochs=1", check=0)
    starts = warm.starts
    os.kill(warm.zygote.proc.pid, signal.SIGKILL)
    warm.zygote.proc.wait()
    warm.train(tmp_path / "second", MLP, "-b", "training_loop.n_epochs=1", check=0)
    assert warm.starts == starts + 1


@pytest.mark.parametrize("env, says", [({"PYTHONPATH": "/elsewhere"}, "PYTHONPATH ['/elsewhere'] cannot reach"),
                                       ({"OMP_NUM_THREADS": "2"}, "['OMP_NUM_THREADS'] differ")])
def test_a_run_that_needs_another_start_is_refused(warm, tmp_path, env, says):
    with pytest.raises(AssertionError, match=says.replace("[", r"\[")):
        warm.start(["train", tmp_path / "run", MLP], env={**os.environ, **env})
    assert not (tmp_path / "run").exists()


def test_a_closed_zygote_ends_by_itself_though_a_fork_of_its_owner_holds_its_socket(warm, tmp_path):
    """A DataLoader's workers forked from this process (test_seeded_batches) hold copies of the zygote's socket:
    close() still ends it at once (runkit.sweeps.warm.Zygote.close), not by killing it once its wait ran out."""
    warm.train(tmp_path / "run", MLP, "-b", "training_loop.n_epochs=1", check=0)
    zygote = warm.zygote
    proc = zygote.proc
    child = os.fork()
    if child == 0:  # holds every fd of this process, the zygote's socket among them, until killed
        time.sleep(600)
        os._exit(0)
    try:
        zygote.close()
        assert proc.returncode == 0  # left when its socket closed; -9: killed after close()'s 10 s wait
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
