"""A run's outcome: the line runbatch prints for each spec, local or under SLURM (docs/spec.md, 'Outcomes')."""


def outcome(spec, status, exit_code=None, signal=None, duration=0.0, attempts=0, reason=None, **extra):
    """{name, run_dir, status, exit_code, signal, duration, attempts, reason} and what the runner adds
    (gpu; slurm_job, slurm_task; changed)."""
    out = {"name": spec["name"], "run_dir": spec["run_dir"], "status": status, "exit_code": exit_code,
           "signal": signal, "duration": round(duration, 3), "attempts": attempts, "reason": reason}
    out.update(extra)
    return out


def not_run(spec, verdict, **extra):
    """The outcome of a spec that was not started: skipped, or a conflict naming what changed."""
    changed = {"changed": list(verdict.changes)} if verdict.action == "conflict" else {}
    return outcome(spec, verdict.action, reason=verdict.reason, **changed, **extra)
