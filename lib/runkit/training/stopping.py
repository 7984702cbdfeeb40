"""Stop requests: the stop signals of the run's lifecycle (lifecycle.STOP_SIGNALS: SIGUSR1 and SIGUSR2, SLURM's
warnings before a preemption; SIGTERM; Ctrl-C, SIGINT) ask a run to stop after its current step, with a checkpoint. `install()` runs first thing in `train`, before the slow
imports, so a signal during imports or data loading is kept and acted on at the first step.
"""
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


def die_with_parent():
    """Ask the kernel to kill this process when its parent dies (Linux; elsewhere a no-op): a DataLoader
    worker or a distributed run's extra process must not outlive a `train` killed with -9."""
    import os
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)
