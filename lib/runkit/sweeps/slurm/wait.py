"""`runbatch --slurm --wait`: block until a batch's tasks have left the queue, asking squeue once a poll for
the whole batch, less often while the controller is slow or away, and giving up after a patience."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO

from runkit import cli
from runkit.rundir import runs
from runkit.sweeps import batch_folder as folder
from runkit.sweeps.slurm import client
from runkit.sweeps.slurm.outcomes import requeues
from runkit.sweeps.spec import Spec

# How long --wait keeps asking a controller that does not answer before it gives up (the jobs go on).
PATIENCE_VAR, PATIENCE = "RUNBATCH_SLURM_PATIENCE", 600.0
LONGEST = 300.0  # the longest wait between two polls


def wait_for(batch_dir: str, specs: list[Spec], poll: float = 10.0, progress: IO[str] = sys.stderr,
             patience: float | None = None, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict[int, str]:
    """Block until no task of the batch's arrays is queued or running; progress on stderr. {task: last SLURM
    state}, by the batch's task number (run i of specs is in task i // K, K: the batch's runs per task).

    One squeue a poll for the whole batch. When squeue is slow (more than a quarter of the poll) or fails, the
    next poll waits twice as long (up to 5 minutes); after `patience` seconds (RUNBATCH_SLURM_PATIENCE, 600)
    without an answer it gives up with a message: the jobs go on, and `collect` shows the runs."""
    if patience is None:
        patience = float(os.environ.get(PATIENCE_VAR) or PATIENCE)
    per = folder.read_record(batch_dir).get("runs_per_task", 1)
    where = {(a["job_id"], str(j)): a["first"] + j for a in folder.arrays(batch_dir) for j in range(a["count"])}
    ids = ", ".join(dict.fromkeys(job for job, _ in where))
    seen: dict[int, str] = {}
    restarts: dict[int, int] = {}
    shown, delay, silent_since = None, poll, None
    while True:
        asked = clock()
        slow: list[float] = []

        def waiting(seconds: float, slow: list[float] = slow) -> None:
            slow.append(seconds)
            cli.say(f"squeue has not answered for {seconds:.0f} s (the SLURM controller is down, restarting "
                    f"or busy); still waiting for it, up to {client.TIMEOUT} s: jobs {ids} go on", progress)
        try:
            listed = client.squeue(waiting)
        except client.Unreachable as e:
            now = clock()
            silent_since = silent_since if silent_since is not None else asked
            if now - silent_since >= patience:
                raise client.Unreachable(f"the SLURM controller has not answered for {now - silent_since:.0f} s "
                                         f"({e}); stopped waiting: jobs {ids} go on, and `collect` shows their "
                                         "runs") from None
            delay = min(max(delay * 2, poll), LONGEST)
            cli.say(f"no answer from SLURM ({e}); jobs {ids} go on; asking again in {delay:.0f} s "
                    f"(giving up after {patience:.0f} s of silence: {PATIENCE_VAR})", progress)
            sleep(delay)
            continue
        took = clock() - asked
        if silent_since is not None or slow:
            since = silent_since if silent_since is not None else asked
            cli.say(f"SLURM answers again, after {clock() - since:.0f} s", progress)
        silent_since = None
        delay = min(delay * 2, LONGEST) if took > poll / 4 else poll
        tasks = {where[key]: state for key, (state, _script) in listed.items() if key in where}
        for task, state in tasks.items():
            _say_requeues(task, specs[task * per:(task + 1) * per], seen.get(task), state, restarts, progress)
        seen.update(tasks)
        # A task SLURM no longer lists (it forgets finished jobs) is as done as one in a final state.
        live = [t for t, state in tasks.items() if state not in client.FINAL]
        line = _progress_line(ids, specs, live, folder.task_count(len(specs), per))
        if line != shown:
            cli.say(line, progress)
            shown = line
        if not live:
            return seen
        sleep(delay)


def _progress_line(ids: str, specs: list[Spec], live: list[int], tasks: int) -> str:
    counts: dict[str, int] = {}
    for s in specs:
        state = runs.status(s["run_dir"])
        counts[state] = counts.get(state, 0) + 1
    return (f"job{'s' * (',' in ids)} {ids}: "
            + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            + f"; {len(live)} of {tasks} tasks queued or running")


def _say_requeues(task: int, group: list[Spec], before: str | None, state: str, restarts: dict[int, int],
                  progress: IO[str]) -> None:
    """Say on `progress` when SLURM puts a task back in the queue (preempted, warned, its node died) and when
    it starts again (a new attempt in slurm.json with a higher SLURM_RESTART_COUNT); group: the task's specs;
    restarts: {task: the count said so far}, updated."""
    names = ", ".join(s["name"] for s in group)
    name = f"task {task}" + (f" ({names})" if group else "")
    if state == "PENDING" and before not in (None, "PENDING"):
        cli.say(f"{name} was requeued by SLURM (it was {before}); it runs again, from its last "
                "checkpoint for a run that saves them", progress)
    if state == "RUNNING" and group:
        count = max(requeues(s["run_dir"]) for s in group)
        if count > restarts.get(task, 0):
            cli.say(f"{name} restarted after {count} requeue{'s' * (count != 1)} (SLURM_RESTART_COUNT "
                    f"{count}; its attempts are in {runs.SLURM})", progress)
            restarts[task] = count
