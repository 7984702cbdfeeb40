"""One attempt at a run (runkit.sweeps.attempt), as every runner makes it, with a fake launcher and no
subprocess: each way a job can end leaves exactly one ending in the folder, written while the run's lock is
held, and the lock free afterwards; the runner's hooks and the heartbeat see the job come and go."""
import os
import signal

import pytest

from runkit.rundir import lifecycle, lock, runs
from runkit.sweeps.attempt import run_attempt

ENDINGS = (runs.FINISHED, runs.STOPPED, runs.ERROR)


class Job:
    """What a launcher returns: a job that exits with `code` when waited for."""

    def __init__(self, code):
        self.code, self.waited = code, False

    def wait(self):
        self.waited = True
        return self.code


class Launcher:
    """Starts a Job that exits with `code`, or raises `error`; remembers what it was given."""

    def __init__(self, code=0, error=None):
        self.code, self.error, self.given = code, error, None

    def __call__(self, argv, **popen):
        self.given = (argv, popen)
        if self.error:
            raise self.error
        return Job(self.code)


class Watched(lifecycle.Run):
    """A run that notes, each time an ending is written, whether its lock was held then."""
    held_when_written = None

    def _held(self):
        other = lock.Lock.claim(self.run_dir)
        if other:
            other.release()
        return self.lock is not None and other is None

    def finish(self):
        self.held_when_written = self._held()
        super().finish()

    def stop(self, signal_name):
        self.held_when_written = self._held()
        super().stop(signal_name)

    def fail(self, error, kind):
        self.held_when_written = self._held()
        super().fail(error, kind)


class Beats:
    """A heartbeat that records the runs it was given and let go of."""

    def __init__(self):
        self.added, self.discarded = [], []

    def add(self, run):
        self.added.append(run)

    def discard(self, run):
        self.discarded.append(run)


def claimed(tmp_path):
    run = Watched(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    assert run.claim()
    return run


def written(run):
    return [name for name in ENDINGS if os.path.exists(runs.path(run.run_dir, name))]


@pytest.mark.parametrize("code,warned,status,exit_code,ending", [
    (0, None, "finished", 0, runs.FINISHED),
    (128 + signal.SIGTERM, None, "stopped", 128 + signal.SIGTERM, runs.STOPPED),
    (-signal.SIGKILL, None, "killed", 128 + signal.SIGKILL, runs.ERROR),
    (-signal.SIGTERM, "SIGUSR1", "stopped", 128 + signal.SIGTERM, runs.STOPPED),  # killed on the way out
    (3, None, "failed", 3, runs.ERROR),
])
def test_each_ending_is_written_once_holding_the_lock_which_then_goes(tmp_path, code, warned, status, exit_code,
                                                                         ending):
    run, beats, seen = claimed(tmp_path), Beats(), []
    how = run_attempt(run, ["job"], {}, beats, "job", launch=Launcher(code), on_start=seen.append,
                      on_exit=seen.append, warned=lambda: warned)
    assert (how["status"], how["exit_code"]) == (status, exit_code) and "warm" not in how
    assert written(run) == [ending] and run.held_when_written is True
    assert run.lock is None and lock.Lock.claim(run.run_dir) is not None  # free for the next runner
    assert beats.added == beats.discarded == [run] and len(seen) == 2 and seen[0] is seen[1] and seen[0].waited


def test_a_job_that_cannot_start_fails_with_127_holding_the_lock(tmp_path):
    run, beats, seen = claimed(tmp_path), Beats(), []
    how = run_attempt(run, ["/no/such/job"], {}, beats, "job", on_start=seen.append,
                      launch=Launcher(error=FileNotFoundError(2, "No such file or directory")))
    assert how == {"status": "failed", "exit_code": lifecycle.CANNOT_START, "signal": None,
                   "reason": "cannot start job: No such file or directory"}
    assert written(run) == [runs.ERROR] and run.held_when_written is True
    assert runs.read_json(run.run_dir, runs.ERROR)["type"] == "LaunchError"
    assert run.lock is None and seen == [] and beats.added == []


def test_the_job_gets_the_lock_and_an_earlier_ending_goes_when_it_starts(tmp_path):
    run = claimed(tmp_path)
    run_fd = run.fd
    runs.mark_failed(run.run_dir, "exited with code 1", "ExitCode")  # the last attempt's
    launcher = Launcher(0)
    run_attempt(run, ["job", "x"], {"A": "1"}, Beats(), "job", launch=launcher, stdout=None)
    argv, popen = launcher.given
    assert argv == ["job", "x"] and popen["env"]["A"] == "1"
    assert popen["pass_fds"] == (int(popen["env"]["RUNKIT_LOCK_FD"]),) == (run_fd,)
    assert written(run) == [runs.FINISHED]


def test_a_job_whose_processes_srun_starts_is_told_the_owner_not_given_the_fd(tmp_path):
    run, launcher = claimed(tmp_path), Launcher(0)
    run_attempt(run, ["job"], {}, Beats(), "job", launch=launcher, hold=True)
    _argv, popen = launcher.given
    assert popen["pass_fds"] == () and "RUNKIT_LOCK_FD" not in popen["env"]
    assert popen["env"]["RUNKIT_LOCK_OWNER"] == lock.owner(run.run_dir) != ""


def test_an_interrupted_wait_leaves_the_lock_with_the_runner_and_the_heartbeat_let_go(tmp_path):
    class Interrupted(Job):
        def wait(self):
            raise KeyboardInterrupt

    run, beats, seen = claimed(tmp_path), Beats(), []
    with pytest.raises(KeyboardInterrupt):
        run_attempt(run, ["job"], {}, beats, "job", launch=lambda argv, **popen: Interrupted(0), on_exit=seen.append)
    assert beats.discarded == [run] and len(seen) == 1  # the heartbeat and the runner's list let go in a finally
    assert written(run) == [] and run.lock is not None  # no ending guessed: the job may still run


def test_giving_up_on_a_run_writes_its_error_holding_the_lock(tmp_path):
    run = claimed(tmp_path)
    run.give_up("requeued 21 times (limit 20: runbatch --max-requeues)", "TooManyRequeues")
    assert written(run) == [runs.ERROR] and run.held_when_written is True and run.lock is None
