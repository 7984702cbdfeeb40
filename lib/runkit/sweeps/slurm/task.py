"""One task of a `runbatch --slurm` job array: run spec number SLURM_ARRAY_TASK_ID of a batch.

    python -m runkit.sweeps.slurm.task BATCH/specs.jsonl TASK_ID [--first=F] [--runs-per-task=K] [--restart-changed]
        (the last line of BATCH/job.sbatch; --first: the array's first task, when a batch is several arrays)

It is the batch shell's process (the script `exec`s it), so SLURM's warning signal reaches it; it passes
the stop signals (lifecycle.STOP_SIGNALS) on to the job, which checkpoints and requeues itself (train does).
It claims the run by the rules of the local runner (batch.claim) and leaves its folder through the same
lifecycle (lifecycle.Run), so any command works; it records each attempt (SLURM ids, host, times, exit
code) in the run's slurm.json. The argv is started directly, never through a shell.

With RUNKIT_CODE_SNAPSHOT set (the batch froze its code: runkit.sweeps.snapshot), the argv runs from the snapshot.
With RUNKIT_SLURM_SRUN=1 (runbatch --nodes/--ntasks-per-node: several processes a run), the argv is started
through `srun`, once per task of the allocation; this process keeps the run's lock while they run (train's
rank 0 trusts it: lock.held_by_launcher) and passes the warning signal to srun, which passes it to every task.

With --runs-per-task=K (runbatch --runs-per-task: many short runs), task t runs specs tK..tK+K-1 one after
another, each claimed, recorded and ended as above, its output in RUN_DIR/slurm-<job>_<task>.log; a finished
run is skipped, so a requeued task resumes the run it was warned in and then runs the rest. No run starts
after a stop signal; one that comes between runs requeues the task itself (USR1), as train would. `train`
runs of a task fork from one warm process (runkit.sweeps.warm; not with srun), which imports torch once.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import IO, Any

from runkit import cli
from runkit.rundir import lifecycle, lock, runs
from runkit.sweeps import batch, snapshot, spec, warm
from runkit.sweeps.attempt import run_attempt
from runkit.sweeps.slurm import client
from runkit.sweeps.spec import Spec


def main(specs_file: str, task_id: str, *flags: str) -> int:
    first = next((int(f.split("=", 1)[1]) for f in flags if f.startswith("--first=")), 0)
    per = next((int(f.split("=", 1)[1]) for f in flags if f.startswith("--runs-per-task=")), 1)
    task = first + int(task_id)
    with open(specs_file, encoding="utf-8") as stream:
        jobs = spec.read(stream, specs_file)[task * per:(task + 1) * per]
    with lifecycle.Heartbeat() as beats:
        if per == 1:
            return one(jobs[0], task_id, flags, beats)
        return packed(jobs, task_id, flags, beats)


def packed(jobs: list[Spec], task_id: str, flags: tuple[str, ...], beats: lifecycle.Heartbeat) -> int:
    """Run the task's specs one after another; its exit code: the first run's that was not 0, else 0."""
    relay, codes = Relay(), []
    zygote = _zygote(jobs)
    name = f"slurm-{os.environ.get('SLURM_ARRAY_JOB_ID') or os.environ.get('SLURM_JOB_ID')}_{task_id}.log"
    try:
        for i, job in enumerate(jobs):
            if relay.warned:
                if "SIGUSR1" in relay.unheard:  # warned between runs: no train heard it, so requeue here
                    client.requeue(cli.say)
                cli.say(f"{relay.warned[0]}: {len(jobs) - i} run{'s' * (len(jobs) - i != 1)} not started")
                break
            os.makedirs(job["run_dir"], exist_ok=True)
            with open(os.path.join(job["run_dir"], name), "ab") as out:
                codes.append(one(job, task_id, flags, beats, relay, zygote, out))
            relay.children.clear()
    finally:
        if zygote:
            zygote.close()
    return next((c for c in codes if c), 0)


def _zygote(jobs: list[Spec]) -> warm.Zygote | None:
    """The warm process for the task's unfinished `train` runs (two or more, started here, not by srun), else
    None: one cold start costs what the warm process's own start does."""
    if os.environ.get("RUNKIT_SLURM_SRUN") == "1" or not warm.supported():
        return None
    todo = [job for job in jobs if runs.status(job["run_dir"]) != "finished"]
    trains = [(argv, env) for argv, env in map(warm_command, todo) if warm.is_train(argv)]
    if len(trains) < 2:
        return None
    return warm.Zygote(trains[0][1], [m for argv, _env in trains for m in warm.config_imports(argv)])


def command(job: Spec) -> tuple[list[str], dict[str, str]]:
    """(argv, env) the job runs with: the spec's, from the code snapshot if the batch froze its code."""
    argv, env = job["argv"], {**os.environ, **job.get("env", {})}
    if os.environ.get(snapshot.ENV):
        argv, env = snapshot.command(argv, env, os.environ[snapshot.ENV])
    return argv, env


def warm_command(job: Spec) -> tuple[list[str], dict[str, str]]:
    """command(job) as the warm process takes it: a snapshot's `python BATCH/code/tools/train ...` as `train ...`
    (the warm process runs the snapshot's train: it imported the snapshot's lib, as this process did)."""
    argv, env = command(job)
    if job["argv"][0] == "train" and not warm.is_train(argv):
        argv = ["train", *argv[len(argv) - len(job["argv"]) + 1:]]
    return argv, env


class Relay:
    """Passes the stop signals (lifecycle.STOP_SIGNALS) on to the running job; warned: those received, in
    order; unheard: those received while no job ran (between the runs of a packed task)."""

    def __init__(self) -> None:
        self.warned: list[str] = []
        self.unheard: list[str] = []
        self.children: list[Any] = []
        for signum in lifecycle.STOP_SIGNALS:  # before the start: a warning that comes then must not kill this
            signal.signal(signum, self.forward)

    def forward(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        self.warned.append(name)
        if not self.children:
            self.unheard.append(name)
        for child in self.children:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass


def one(job: Spec, task_id: str, flags: tuple[str, ...], beats: lifecycle.Heartbeat, relay: Relay | None = None,
        zygote: warm.Zygote | None = None, out: IO[bytes] | None = None) -> int:
    """Claim, run and record one spec; its exit code. beats: the task's lifecycle.Heartbeat; relay, zygote,
    out: a packed task's (Relay, warm.Zygote or None, the run's log file); without them, as a task of one run."""
    run_dir = job["run_dir"]
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    attempt = {"job_id": os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID"),
               "task_id": task_id, "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "restart_count": restarts,
               "host": socket.gethostname(), "start": time.time()}
    limit = int(os.environ.get("RUNKIT_SLURM_MAX_REQUEUES", "20"))
    if restarts > limit and out is not None and runs.status(run_dir) == "finished":
        return 0  # a packed task's run that finished in an earlier attempt
    if restarts > limit:
        # Requeued again and again without finishing: stop here rather than loop forever.
        why = f"requeued {restarts} time{'s' * (restarts != 1)} (limit {limit}: runbatch --max-requeues)"
        held = lifecycle.Run(run_dir)
        if held.claim():  # error.json is written holding the lock; a run another process holds is its own
            held.give_up(why, "TooManyRequeues")
        return _end(run_dir, attempt, exit_code=1, status="failed", reason=why)
    try:
        run, verdict = batch.claim(job, "--restart-changed" in flags, retry=restarts > 0)
    except lock.NoLocks as e:
        cli.say(str(e))
        return _end(run_dir, attempt, exit_code=2, status="failed", reason=str(e))
    if run is None:
        cli.say(f"{run_dir}: {verdict.action} ({verdict.reason}); nothing to do")
        return _end(run_dir, attempt, exit_code=0, status=verdict.action, reason=verdict.reason)
    runs.record_slurm_attempt(run_dir, attempt)
    return _end(run_dir, attempt, **_run(job, run, beats, relay, zygote, out))


def _run(job: Spec, run: lifecycle.Run, beats: lifecycle.Heartbeat, relay: Relay | None = None,
         zygote: warm.Zygote | None = None, out: IO[bytes] | None = None) -> lifecycle.Ending:
    """One attempt (runkit.sweeps.attempt), the stop signals passed on to it: how it ended, for slurm.json."""
    relay = relay or Relay()
    argv, env = command(job)
    several = os.environ.get("RUNKIT_SLURM_SRUN") == "1"
    if several:
        # every task of the allocation runs the argv; one failing ends them all
        argv = ["srun", "--kill-on-bad-exit=1", "--export=ALL", *argv]
    how: dict[str, Any] = {"hold": several}
    if out is not None:
        how = {**how, "stdout": out, "stderr": out}
        if zygote:
            forked, forked_env = warm_command(job)
            if zygote.takes(forked, forked_env):
                argv, env, how = forked, forked_env, {"launch": zygote.popen, "stdout": out, "stderr": out}

    def started(child: Any) -> None:
        relay.children.append(child)
        if out is not None and relay.warned:  # a signal that came while it was starting: it hears it now
            child.send_signal(getattr(signal, relay.warned[0]))
            relay.unheard.clear()
    # SLURM warned it: train saves, requeues its task and exits, and the requeue's SIGTERM may kill it on
    # the way out. Stopped, not failed: the task runs again (a job that cannot requeue itself is rerun by
    # the next submission).
    return run_attempt(run, argv, env, beats, job["argv"][0], on_start=started,
                       warned=lambda: relay.warned[0] if relay.warned else None, **how)


def _end(run_dir: str, attempt: dict, **how: Any) -> int:
    """Record how the attempt ended (exit_code, status, reason, signal) and return its exit code."""
    attempt.update(end=time.time(), **how)
    runs.record_slurm_attempt(run_dir, attempt)
    return how["exit_code"]


if __name__ == "__main__":
    cli.name_tool("slurm_task")
    sys.exit(main(*sys.argv[1:]))
