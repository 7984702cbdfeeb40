"""Which runs of a batch to start, and claiming one: the rules every runner shares (local workers, SLURM tasks).

A spec is compared with what its run folder was made from (spec.json; for a run that train made by hand,
bindings.json), docs/spec.md 'Changed specs':
- the same: a finished run is skipped, and so is a running one (another live process owns it); any other
  is started (train resumes it);
- only more training_loop.n_epochs: a continuation, started (train resumes the finished run);
- anything else: a conflict, neither started nor overwritten; with restart_changed the run is cleared and
  started over. A folder that holds no results yet is never a conflict: nothing is lost by starting it.
"""
from __future__ import annotations

import fnmatch
import os
from typing import NamedTuple

from runkit.rundir import lifecycle, runs
from runkit.sweeps import spec
from runkit.sweeps.spec import Spec

# What runners write in a run folder: a folder holding only these has no results to protect.
RECORDS = {runs.LOCK, runs.SPEC, runs.STDOUT, runs.STDERR, runs.SLURM, runs.HEARTBEAT, runs.ERROR, runs.STOPPED}


class Verdict(NamedTuple):
    """action: run | skipped | conflict; reason: why skipped, or the changes as text; start: how a run starts
    (None: as it is, 'continue': more epochs of a finished run, 'restart': cleared first); changes: texts."""
    action: str
    reason: str | None = None
    start: str | None = None
    changes: tuple = ()


def decide(s: Spec, restart_changed: bool = False, ignore_running: bool = False, now: float | None = None) -> Verdict:
    """The Verdict for a spec now; reads only. ignore_running: the caller holds the lock, or retries its own task."""
    run_dir = s["run_dir"]
    conflicts, continued = compare(run_dir, spec.made_from(s))
    state = runs.status(run_dir, now)
    if conflicts and not restart_changed:
        return Verdict("conflict", "; ".join(conflicts), changes=tuple(conflicts))
    if state == "running" and not ignore_running:
        return Verdict("skipped", "running")
    if conflicts:
        return Verdict("run", start="restart", changes=tuple(conflicts))
    if continued:
        return Verdict("run", start="continue")
    if state == "finished":
        return Verdict("skipped", "finished")
    return Verdict("run")


def compare(run_dir: str, made_from: dict) -> tuple[list[str], bool]:
    """(conflicts, continued) between a spec's record and what the run folder was made from."""
    if not has_results(run_dir):
        return [], False
    try:
        old, trained = runs.read_json(run_dir, runs.SPEC), runs.read_json(run_dir, runs.BINDINGS)
    except runs.CorruptRun as e:
        return [str(e)], False
    if old is not None:
        return spec.changes(old, made_from, trained)
    if trained is not None:
        return spec.trained_changes(trained, made_from)
    return [], False


def has_results(run_dir: str) -> bool:
    """True if the folder holds anything but runners' records (FINISHED counts: the job said it is done)."""
    try:
        names = os.listdir(run_dir)
    except (FileNotFoundError, NotADirectoryError):
        return False
    slurm_log = runs.SLURM_LOG.replace("%A", "*").replace("%a", "*")
    return any(n not in RECORDS and not fnmatch.fnmatch(n, slurm_log) and not n.endswith(".tmp") for n in names)


def pending(specs: list[Spec], restart_changed: bool = False, now: float | None = None) -> list[tuple[Spec, Verdict]]:
    """[(spec, Verdict)] for every spec, in order."""
    return [(s, decide(s, restart_changed, now=now)) for s in specs]


def claim(s: Spec, restart_changed: bool = False, retry: bool = False) -> tuple[lifecycle.Run | None, Verdict]:
    """Take a run to start it: (lifecycle.Run holding its lock, Verdict), or (None, Verdict) to skip or report.

    The verdict is taken again once the lock is held, so two runners racing for one run never both start it.
    retry: a new attempt of our own run (a local retry, a requeued SLURM task): its heartbeat is not another's.
    """
    verdict = decide(s, restart_changed, ignore_running=retry)
    if verdict.action != "run":
        return None, verdict
    run = lifecycle.Run(s["run_dir"])
    if not run.claim():
        return None, Verdict("skipped", "running")
    try:
        verdict = decide(s, restart_changed, ignore_running=True)
        if verdict.action != "run":
            run.release()
            return None, verdict
        if verdict.start == "restart":
            run.clear()
        elif verdict.start == "continue":
            run.begin()
        run.record(spec.made_from(s))
    except BaseException:
        run.release()
        raise
    return run, verdict
