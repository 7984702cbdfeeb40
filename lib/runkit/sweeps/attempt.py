"""One attempt at a run a runner claimed, the same for every runner: the local one (local.Executor, cold and
warm) and the SLURM task (slurm.task, packed or not).

    how = attempt.run_attempt(run, argv, env, beats, name="train")

starts the job holding the run's lock (lifecycle.Run.start), keeps the run's heartbeat while it lives (beats,
a lifecycle.Heartbeat, left in a finally), waits, and records exactly one ending, the lock held until it is
written: lifecycle.Run.ended from the exit status, or lifecycle.Run.not_started (exit code 127) when the job
cannot start. Returns the ending: {status, exit_code, signal, reason}, and "warm": true for a forked run.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from runkit.rundir import lifecycle
from runkit.sweeps import warm


def run_attempt(run: lifecycle.Run, argv: list[str], env: Mapping[str, str], beats: lifecycle.Heartbeat, name: str,
                launch: Callable[..., Any] = subprocess.Popen, hold: bool = False,
                on_start: Callable[[Any], None] | None = None, on_exit: Callable[[Any], None] | None = None,
                warned: Callable[[], str | None] | None = None, **popen: Any) -> lifecycle.Ending:
    """Start, beat, wait, record. name: the program as the spec names it, for the error; on_start(child) and
    on_exit(child): the runner's bookkeeping of its running jobs (passing signals on); warned(): the stop
    signal passed on to the job, if any (lifecycle.Run.ended); launch, hold, popen: as lifecycle.Run.start."""
    try:
        child = run.start(argv, env, hold=hold, launch=launch, **popen)
    except OSError as e:
        return run.not_started(f"cannot start {name}: {e.strerror}")
    except BaseException:
        run.release()
        raise
    try:
        if on_start:
            on_start(child)
        beats.add(run)
        try:
            code = child.wait()
        finally:
            beats.discard(run)
    finally:
        if on_exit:
            on_exit(child)
    how = run.ended(code, warned=warned() if warned else None)
    return {**how, "warm": True} if isinstance(child, warm.Forked) else how
