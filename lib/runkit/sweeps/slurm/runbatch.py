"""`runbatch --slurm`: submit what is still to do (or print its script), and with --wait, block and print
each run's outcome. Its local twin is runkit.sweeps.local.run_batch, which shares batch.py's rules."""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from runkit import cli, errors
from runkit.sweeps import batch_folder as folder
from runkit.sweeps import outcome as outcomes
from runkit.sweeps import snapshot
from runkit.sweeps.slurm.options import Options
from runkit.sweeps.slurm.outcomes import outcome
from runkit.sweeps.slurm.submit import scripts, split, submit
from runkit.sweeps.slurm.wait import wait_for
from runkit.sweeps.spec import Spec


def run_batch(specs: list[Spec], options: Options, dry_run: bool = False, wait: bool = False, poll: float = 10.0,
              restart_changed: bool = False, out: Callable[[Mapping[str, Any]], None] = cli.write_jsonl,
              freeze: bool = True) -> None:
    """Submit what is still to do (or print its script); with `wait`, block and print each run's outcome."""
    todo, others = split(specs, restart_changed)
    conflicts = [(s, v) for s, v in others if v.action == "conflict"]
    for s, v in conflicts:
        cli.say(f"{s['name']}: conflict: {v.reason}")
    say = f"{len(todo)} of {len(specs)} runs ({len(others) - len(conflicts)} finished, running or queued" \
          f"{f', {len(conflicts)} in conflict' if conflicts else ''})"
    if dry_run:
        if todo:
            frozen = snapshot.project_root() if freeze else None
            for part, (_first, _count, text) in enumerate(scripts(folder.new_batch_dir(todo), todo, options,
                                                                   restart_changed, frozen)):
                sys.stdout.write(("\n" if part else "") + text)
        cli.say(f"would submit {say}; nothing written")
        return
    job_ids: list[str] = []
    batch_dir: str | None = None
    if not todo:
        cli.say(f"nothing to submit: {say}")
    else:
        job_ids, batch_dir = submit(todo, options, restart_changed, freeze)
        cli.say(f"submitted job{'s' * (len(job_ids) > 1)} {', '.join(job_ids)}: {say}; "
                f"batch folder {batch_dir}")
    job_id = job_ids[0] if job_ids else None
    if not wait:
        out({"job_id": job_id, "job_ids": job_ids, "batch_dir": batch_dir, "runs": len(todo),
             "skipped": len(others) - len(conflicts), "conflicts": len(conflicts)})
        return _conflicts_fail(conflicts)
    for s, verdict in others:
        out(outcomes.not_run(s, verdict))
    if batch_dir is None:  # nothing was submitted
        return _conflicts_fail(conflicts)
    try:
        states = wait_for(batch_dir, todo, poll)
    except KeyboardInterrupt:
        cli.say(f"stopped waiting; job {', '.join(job_ids)} goes on (`collect` shows its runs, "
                f"`scancel {' '.join(job_ids)}` stops it)")
        raise
    results = [outcome(s, states.get(i // options.runs_per_task)) for i, s in enumerate(todo)]
    for result in results:
        out(result)
    bad = sum(r["status"] not in ("finished", "skipped") for r in results)
    if bad:
        raise errors.WorkFailed(f"{bad} of {len(todo)} runs failed, were killed, stopped or in conflict; see "
                                "RUN_DIR/slurm-*.log and RUN_DIR/error.json")
    _conflicts_fail(conflicts)


def _conflicts_fail(conflicts: list) -> None:
    if conflicts:
        raise errors.WorkFailed(f"{len(conflicts)} runs conflict with what their folders were made from (listed "
                                "above): rerun with --restart-changed to start them over, or give them other names")
