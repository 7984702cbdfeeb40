"""Every call to SLURM's commands (sbatch, squeue, scontrol), with one rule for a controller that is slow or
away: SLURM's clients keep trying a controller that is down, up to its SlurmctldTimeout, rather than fail, so
a call is given TIMEOUT seconds, and `waiting` hears of it after SLOW."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

from runkit import errors

# Seconds a SLURM command may take before it fails as Unreachable, and before --wait says it is waiting for one.
TIMEOUT, SLOW = 120, 10
# Array task states after which a task never runs again (a requeued one goes back to PENDING).
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "SPECIAL_EXIT", "REVOKED"}
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's own


class Unreachable(errors.WorkFailed):
    """A SLURM command did not answer (the controller is down, unreachable or overloaded)."""


def call(argv: list[str], input: str | None = None,
         waiting: Callable[[float], None] | None = None) -> subprocess.CompletedProcess:
    """The command's CompletedProcess; waiting(SLOW) is called if it is still running after SLOW seconds."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise errors.BadInput(f"{argv[0]} not found: run this where SLURM's commands are on PATH "
                             "(or try scripts/slurm-cluster start)") from None
    try:
        try:
            out, err = proc.communicate(input, timeout=SLOW if waiting else TIMEOUT)
        except subprocess.TimeoutExpired:
            if not waiting:
                raise
            waiting(SLOW)
            out, err = proc.communicate(timeout=TIMEOUT - SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Unreachable(f"{argv[0]} did not answer in {TIMEOUT} s: is the SLURM controller up?") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _said(done: subprocess.CompletedProcess) -> str:
    return " ".join(done.stderr.split()) or f"exit {done.returncode}"


def squeue(waiting: Callable[[float], None] | None = None) -> dict[tuple[str, str], tuple[str, str]]:
    """{(array job id, task id): (state, script path)} for this user's array tasks that SLURM still lists.

    One call for all of the user's jobs, whatever the number of arrays: the controller answers it once.
    waiting(seconds): called once if squeue has not answered after SLOW seconds."""
    done = call(["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%F|%K|%T|%o"],
                waiting=waiting)
    if done.returncode != 0:
        raise Unreachable(f"squeue failed: {_said(done)}")
    table = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            table[(parts[0], parts[1])] = (parts[2], parts[3])
    return table


def max_array_size() -> int:
    """The cluster's MaxArraySize (an array's task ids must be below it); SLURM's default if unknown."""
    try:
        done = call(["scontrol", "show", "config"])
    except (errors.BadInput, Unreachable):
        return DEFAULT_MAX_ARRAY_SIZE  # no SLURM here (--dry-run on a laptop), or none that answers: sbatch will say
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return max(int(value.strip()), 1)
    return DEFAULT_MAX_ARRAY_SIZE


def check(script: str) -> None:
    """Let sbatch judge the script and options without submitting (--test-only); BadInput if it objects."""
    done = call(["sbatch", "--test-only"], input=script)
    if done.returncode != 0:
        raise errors.BadInput(f"sbatch rejects the job: {_said(done)} (check the --slurm options)")


def sbatch(script_path: str) -> tuple[str | None, str | None]:
    """Submit a script: its job id, or None and what sbatch said."""
    done = call(["sbatch", "--parsable", script_path])
    if done.returncode != 0:
        return None, " ".join(done.stderr.split())
    return done.stdout.strip().split(";")[0], None


def job_to_requeue(environ: Mapping[str, str] = os.environ) -> str | None:
    """The id scontrol requeue needs: ARRAYJOB_TASK for an array task, else the job id; None outside SLURM."""
    if "SLURM_JOB_ID" not in environ:
        return None
    if environ.get("SLURM_ARRAY_JOB_ID") and environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ["SLURM_JOB_ID"]


def requeue(log: Callable[[str], None], environ: Mapping[str, str] = os.environ) -> bool:
    """Ask SLURM to requeue the job this process runs in; True if scontrol accepted it."""
    job = job_to_requeue(environ)
    if job is None:
        return False
    try:
        done = call(["scontrol", "requeue", job])
    except (errors.BadInput, Unreachable) as e:
        log(f"scontrol requeue {job} failed: {e}")
        return False
    if done.returncode != 0:
        log(f"scontrol requeue {job} failed: {done.stderr.strip()}")
        return False
    log(f"requeued SLURM job {job}")
    return True
