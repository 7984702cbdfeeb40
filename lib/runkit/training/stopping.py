"""Stop requests: the stop signals of the run's lifecycle (lifecycle.STOP_SIGNALS: SIGUSR1 and SIGUSR2, SLURM's
warnings before a preemption; SIGTERM; Ctrl-C, SIGINT) ask a run to stop after its current step, with a checkpoint. `install()` runs first thing in `train`, before the slow
imports, so a signal during imports or data loading is kept and acted on at the first step.
"""
import os
import signal

from runkit.rundir.lifecycle import STOP_SIGNALS

received = None  # the number of the first stop signal, once one came


class Stopped(Exception):
    """A signal stopped the run after a checkpoint; rerunning the same command continues it."""

    def __init__(self, signum):
        super().__init__(f"stopped by {signal.Signals(signum).name} after writing a checkpoint")
        self.signum = signum


def install():
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record)


def _record(signum, _frame):
    global received
    received = received or signum


def die_with_parent(parent=None):
    """Ask the kernel to kill this process when its parent dies (Linux; elsewhere a no-op): a DataLoader
    worker or a distributed run's extra process must not outlive a `train` killed with -9. `parent`: the
    pid of the process that forked this one (without it, a parent of pid 1 means it is gone)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1 if parent is None else os.getppid() != parent:  # it died before the request
        os._exit(1)


_forking = None  # the pid of this process as it forks (os.register_at_fork's `before`)


def children_die_with_this_process():
    """From now on every child this process forks (the workers of any DataLoader, a user's own process)
    is killed by the kernel when this process dies, kill -9 included: a run leaves nothing behind. (Linux
    ties it to the forking thread: a child forked by a thread that then ends is killed too.) A child keeps
    the run's stop-signal handlers: a SIGTERM that SLURM sends every process of a job must not end a loader's
    worker before the run has written its checkpoint."""
    global _forking
    if _forking is None:
        _forking = os.getpid()
        os.register_at_fork(before=_note_forking, after_in_child=lambda: die_with_parent(_forking))


def _note_forking():
    global _forking
    _forking = os.getpid()

