"""The outcome of a run whose task left SLURM's queue, rebuilt from its run folder (SLURM forgets finished
jobs; the run folder and its slurm.json remember every attempt)."""
from __future__ import annotations

import time

from runkit.rundir import runs
from runkit.sweeps import outcome as outcomes
from runkit.sweeps.outcome import Outcome
from runkit.sweeps.spec import Spec


def requeues(run_dir: str) -> int:
    """How many times SLURM requeued the run's task: the highest restart_count of its slurm.json attempts."""
    return max((a.get("restart_count") or 0 for a in (runs.read_slurm(run_dir) or {}).get("attempts", [])),
               default=0)


def outcome(s: Spec, slurm_state: str | None = None) -> Outcome:
    """The outcome line of a run whose task left the queue (docs/spec.md), read from its run folder."""
    run_dir = s["run_dir"]
    tried = (runs.read_slurm(run_dir) or {}).get("attempts", [])
    attempts = [a for a in tried if a.get("status") not in ("skipped", "conflict")]
    last = attempts[-1] if attempts else {}
    state, reason = runs.status(run_dir), last.get("reason")
    if not attempts and tried:
        status, reason = tried[-1]["status"], tried[-1].get("reason")  # its task found nothing to do
    elif state in ("finished", "stopped"):
        status = state
    elif state == "failed":
        status = "killed" if last.get("status") == "killed" else "failed"
        reason = (runs.read_json(run_dir, runs.ERROR) or {}).get("error")
    else:
        status = "killed"
        reason = f"SLURM says {slurm_state}" if slurm_state else f"its task is gone and the run is {state}"
    duration = (last.get("end") or time.time()) - attempts[0]["start"] if attempts else 0.0
    return outcomes.outcome(s, status, exit_code=last.get("exit_code"), signal=last.get("signal"),
                            duration=duration, attempts=len(attempts), reason=reason,
                            slurm_job=last.get("job_id"), slurm_task=last.get("task_id"),
                            slurm_requeues=requeues(run_dir))
