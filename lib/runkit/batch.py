"""Which runs of a batch to start: the skip rules every runner shares (local workers, SLURM arrays).

A run is not started when it is finished, or when another live process holds it: its lock is taken, or its
heartbeat is fresh (a run on another machine, where the lock cannot be seen).
"""
import os

from runkit import runs


def why_skip(run_dir, now=None):
    """'finished' or 'running' when the run must not be started now, else None. Reads only; writes nothing."""
    state = runs.status(run_dir, now)
    if state == "finished":
        return "finished"
    if state == "running" or runs.is_locked(run_dir):
        return "running"
    return None


def pending(specs, now=None):
    """The specs whose runs are neither finished nor running, in order."""
    return [s for s in specs if why_skip(s["run_dir"], now) is None]


def claim(run_dir, retry=False):
    """Take ownership of a run: (lock fd, None), or (None, reason) when it must be skipped.

    The lock is taken first and the status read after, so two runners racing for one run never both start it.
    A retry of our own failed attempt ignores the heartbeat that attempt left behind.
    """
    if runs.status(run_dir) == "finished":
        return None, "finished"
    fd = runs.try_lock(run_dir)
    if fd is None:
        return None, "running"
    state = runs.status(run_dir)
    if state == "finished" or (state == "running" and not retry):
        os.close(fd)
        return None, state
    return fd, None
