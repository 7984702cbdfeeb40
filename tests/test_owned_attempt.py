"""train's attempt at its run (runkit.rundir.attempt), as train owns it, with no subprocess: a run train claims
itself is begun and beaten by it; a run its runner (RUNKIT_LOCK_FD) or launcher (RUNKIT_LOCK_OWNER) holds was
begun by that runner, which beats it, so train neither begins it again nor starts a second heartbeat. Each
ending leaves exactly one of FINISHED, STOPPED, error.json, written while the run's lock is held."""
import os
import signal
import traceback

import pytest

from runkit.rundir import lifecycle, lock, runs
from runkit.rundir.attempt import Attempt, OtherRequest, RunBusy

ENDINGS = (runs.FINISHED, runs.STOPPED, runs.ERROR)


class Beats:
    """A heartbeat that records the runs it beats and whether it was closed."""
    made = []

    def __init__(self):
        self.added, self.closed = [], False
        Beats.made.append(self)

    def add(self, run):
        self.added.append(run)

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def no_runner(monkeypatch):
    monkeypatch.delenv("RUNKIT_LOCK_FD", raising=False)
    monkeypatch.delenv("RUNKIT_LOCK_OWNER", raising=False)
    Beats.made = []


def written(run_dir):
    return [name for name in ENDINGS if os.path.exists(runs.path(run_dir, name))]


def held(run_dir):
    """True if some owner holds the run's lock: a claim by anyone else fails."""
    other = lock.Lock.claim(run_dir)
    if other:
        other.release()
    return other is None


def runner_holds(run_dir, monkeypatch, how):
    """The run as a runner leaves it for train: claimed and begun, its lock handed over (an fd) or named (srun)."""
    runner = lifecycle.Run(run_dir)
    assert runner.claim()
    runner.begin()
    if how == "inherited":
        monkeypatch.setenv("RUNKIT_LOCK_FD", str(runner.fd))
    else:
        monkeypatch.setenv("RUNKIT_LOCK_OWNER", lock.owner(run_dir))
    os.utime(runs.path(run_dir, runs.HEARTBEAT), (0, 0))  # a begin or a beat by train would move it
    return runner


def test_a_run_train_claims_is_begun_and_beaten_by_train_until_the_attempt_ends(tmp_path):
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    runs.touch(run_dir, runs.HEARTBEAT)
    runs.mark_failed(run_dir, "exited with code 1", "ExitCode")  # the last attempt's ending
    attempt = Attempt(run_dir, heartbeat=Beats)
    with attempt:
        assert attempt.claimed and not attempt.created
        attempt.begin()
        assert written(run_dir) == [] and os.path.exists(runs.path(run_dir, runs.HEARTBEAT))
        assert [b.added for b in Beats.made] == [[attempt.run]] and held(run_dir)
        attempt.finish({"monitor": "val/loss"})
    assert Beats.made[0].closed and not held(run_dir)  # the heartbeat stops, the lock claimed here goes


@pytest.mark.parametrize("how", ["inherited", "launcher"])
def test_a_run_its_runner_holds_is_not_begun_or_beaten_again_and_stays_held(tmp_path, monkeypatch, how):
    run_dir = str(tmp_path / "run")
    runner = runner_holds(run_dir, monkeypatch, how)
    attempt = Attempt(run_dir, heartbeat=Beats)
    with attempt:
        assert attempt.run.lock.how == how and not attempt.claimed
        attempt.begin()
        attempt.record_request({"training_loop.n_epochs": 2}, "train run x.gin")
        attempt.finish({"monitor": "val/loss"})
    assert Beats.made == [] and os.stat(runs.path(run_dir, runs.HEARTBEAT)).st_mtime == 0  # no second begin, no beat
    assert written(run_dir) == [runs.FINISHED] and held(run_dir)  # the runner still holds the run
    assert runner.ended(0)["status"] == "finished" and not held(run_dir)


def end(attempt, ending):
    if ending == runs.FINISHED:
        attempt.finish({"monitor": "val/loss", "mode": "min"})
    elif ending == runs.STOPPED:
        attempt.stop(signal.SIGUSR1)
    else:
        try:
            raise ValueError("loss is nan")
        except ValueError as e:
            attempt.fail(str(e), type(e).__name__, traceback.format_exc())


@pytest.mark.parametrize("how", ["claimed", "inherited"])
@pytest.mark.parametrize("ending", ENDINGS)
def test_each_ending_is_the_only_one_and_written_while_the_lock_is_held(tmp_path, monkeypatch, how, ending):
    run_dir = str(tmp_path / "run")
    runner = runner_holds(run_dir, monkeypatch, how) if how == "inherited" else None
    attempt = Attempt(run_dir, heartbeat=Beats)
    with attempt:
        attempt.begin()
        end(attempt, ending)
        assert written(run_dir) == [ending] and held(run_dir)
        with pytest.raises(RuntimeError, match="already ended"):
            attempt.fail("a second ending", "Bug")
    assert written(run_dir) == [ending]
    if ending == runs.FINISHED:
        assert runs.read_json(run_dir, runs.METRICS) == {"monitor": "val/loss", "mode": "min"}
    if ending == runs.STOPPED:
        assert open(runs.path(run_dir, runs.STOPPED)).read().startswith("SIGUSR1 ")
    if ending == runs.ERROR:
        error = runs.read_json(run_dir, runs.ERROR)
        assert (error["error"], error["type"]) == ("loss is nan", "ValueError") and "Traceback" in error["traceback"]
    if runner is not None:  # the runner records the same ending from the exit status; train's error.json stays
        code = {runs.FINISHED: 0, runs.STOPPED: 128 + signal.SIGUSR1, runs.ERROR: 1}[ending]
        runner.ended(code)
        assert written(run_dir) == [ending] and not held(run_dir)
        assert ending != runs.ERROR or "traceback" in runs.read_json(run_dir, runs.ERROR)


def test_no_ending_is_written_once_the_lock_went(tmp_path):
    run_dir = str(tmp_path / "run")
    attempt = Attempt(run_dir, heartbeat=Beats)
    with attempt:
        attempt.begin()
    for late in (lambda: attempt.fail("late", "Bug"), lambda: attempt.stop(signal.SIGTERM),
                 lambda: attempt.finish({}), attempt.undo):
        with pytest.raises(RuntimeError, match="does not hold the run"):
            late()
    assert written(run_dir) == [] and os.path.isdir(run_dir)


def test_an_error_escaping_a_begun_attempt_fails_it_and_one_before_begin_writes_nothing(tmp_path):
    before, after = str(tmp_path / "before"), str(tmp_path / "after")
    with pytest.raises(OSError), Attempt(before, heartbeat=Beats):
        raise OSError("disk full")
    assert written(before) == [] and not held(before)
    with pytest.raises(OSError), Attempt(after, heartbeat=Beats) as attempt:
        attempt.begin()
        raise OSError("disk full")
    assert written(after) == [runs.ERROR] and runs.read_json(after, runs.ERROR)["type"] == "OSError"
    assert not held(after)


def test_undo_removes_a_folder_the_attempt_made_and_clears_one_that_existed(tmp_path):
    made, existed = str(tmp_path / "made"), str(tmp_path / "existed")
    os.makedirs(existed)
    runs.touch(existed, runs.HEARTBEAT)  # an earlier attempt's, beside a runner's output and a file of the user's
    for name in (runs.STDOUT, "notes.txt"):
        (tmp_path / "existed" / name).write_text("kept\n")
    for run_dir in (made, existed):
        with Attempt(run_dir, heartbeat=Beats) as attempt:
            attempt.begin()
            attempt.record_request({"mlp.hidden": "wide"}, "train run x.gin")
            attempt.undo()
    assert not os.path.exists(made)
    assert sorted(os.listdir(existed)) == sorted([runs.LOCK, runs.STDOUT, "notes.txt"])


def test_a_run_another_process_holds_is_refused_before_and_when_owning_it(tmp_path):
    run_dir = str(tmp_path / "run")
    other = lock.Lock.claim(run_dir)
    attempt = Attempt(run_dir, heartbeat=Beats)
    with pytest.raises(RunBusy, match="held by another process"):
        attempt.check_free()
    with pytest.raises(RunBusy, match="held by another process"), attempt:
        pass
    other.release()
    attempt.check_free()
    assert os.listdir(run_dir) == [runs.LOCK] and Beats.made == []


def finished(run_dir, epochs, bindings):
    """A run folder train left finished after `epochs` epochs of `bindings`."""
    with Attempt(run_dir, heartbeat=Beats) as attempt:
        attempt.begin()
        attempt.record_request(bindings, "train")
        runs.write_history(run_dir, [{"epoch": e, "step": 10 * e, "val/loss": 1 / e, "lr": 0.1, "time": 1.0}
                                     for e in range(1, epochs + 1)])
        attempt.finish({"monitor": "val/loss", "stopped_early": False})


def test_done_answers_from_the_folder_whether_the_request_already_finished(tmp_path):
    run_dir = str(tmp_path / "run")
    asked = {"training_loop.n_epochs": 2, "optimizer.lr": 0.1}

    def changed(stored):  # what train passes: the differences but more epochs (runkit.sweeps.changes)
        return [k for k in sorted(set(stored) | set(asked)) if k != "training_loop.n_epochs" and stored.get(k) != asked.get(k)]

    assert Attempt(run_dir).done(2, changed) is None  # nothing there yet
    finished(run_dir, 2, asked)
    assert Attempt(run_dir).done(2, changed) == {"monitor": "val/loss", "stopped_early": False}
    assert Attempt(run_dir).done(3, changed) is None  # more epochs: train continues it
    with pytest.raises(OtherRequest, match="already trained 2 epochs, more than training_loop.n_epochs=1"):
        Attempt(run_dir).done(1, changed)
    asked["optimizer.lr"] = 0.5
    with pytest.raises(OtherRequest, match=r"was run with other bindings \(optimizer.lr\); use another folder"):
        Attempt(run_dir).done(2, changed)
