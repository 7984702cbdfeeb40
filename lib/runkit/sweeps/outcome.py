"""A run's outcome: the line runbatch prints for each spec, local or under SLURM (docs/spec.md, 'Outcomes')."""
from __future__ import annotations

from typing import Any, TypedDict, cast

from runkit.sweeps.spec import Spec


class _Outcome(TypedDict):
    name: str
    run_dir: str
    status: str              # finished | stopped | failed | killed | skipped | conflict
    exit_code: int | None
    signal: str | None
    duration: float
    attempts: int
    reason: str | None


class Outcome(_Outcome, total=False):
    """One outcome line; the keys below only where docs/spec.md says."""
    changed: list[str]
    gpu: str
    warm: bool
    slurm_job: str | None
    slurm_task: str | None
    slurm_requeues: int


def outcome(spec: Spec, status: str, exit_code: int | None = None, signal: str | None = None,
            duration: float = 0.0, attempts: int = 0, reason: str | None = None, **extra: Any) -> Outcome:
    """{name, run_dir, status, exit_code, signal, duration, attempts, reason} and what the runner adds
    (gpu; slurm_job, slurm_task; changed)."""
    out = {"name": spec["name"], "run_dir": spec["run_dir"], "status": status, "exit_code": exit_code,
           "signal": signal, "duration": round(duration, 3), "attempts": attempts, "reason": reason}
    return cast(Outcome, {**out, **extra})


def not_run(spec: Spec, verdict: Any, **extra: Any) -> Outcome:
    """The outcome of a spec that was not started: skipped, or a conflict naming what changed (verdict: a
    batch.Verdict)."""
    if verdict.action == "conflict":
        extra = {"changed": list(verdict.changes), **extra}
    return outcome(spec, verdict.action, reason=verdict.reason, **extra)
