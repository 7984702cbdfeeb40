"""One task of a `runbatch --slurm` job array: run spec number SLURM_ARRAY_TASK_ID of a batch.

    python -m runkit.sweeps.slurm_task BATCH/specs.jsonl TASK_ID [--first=K] [--restart-changed]
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
"""
import os
import signal
import socket
import sys
import time

from runkit.rundir import lifecycle, lock, runs
from runkit.sweeps import batch, snapshot, spec

def main(specs_file, task_id, *flags):
    first = next((int(f.split("=", 1)[1]) for f in flags if f.startswith("--first=")), 0)
    with open(specs_file, encoding="utf-8") as stream:
        job = spec.read(stream, specs_file)[first + int(task_id)]
    run_dir = job["run_dir"]
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    attempt = {"job_id": os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID"),
               "task_id": task_id, "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "restart_count": restarts,
               "host": socket.gethostname(), "start": time.time()}
    limit = int(os.environ.get("RUNKIT_SLURM_MAX_REQUEUES", "20"))
    if restarts > limit:
        # Requeued again and again without finishing: stop here rather than loop forever.
        why = f"requeued {restarts} time{'s' * (restarts != 1)} (limit {limit}: runbatch --max-requeues)"
        lifecycle.Run(run_dir).fail(why, "TooManyRequeues")
        return _end(run_dir, attempt, exit_code=1, status="failed", reason=why)
    try:
        run, verdict = batch.claim(job, "--restart-changed" in flags, retry=restarts > 0)
    except lock.NoLocks as e:
        print(f"slurm_task: {e}", file=sys.stderr)
        return _end(run_dir, attempt, exit_code=2, status="failed", reason=str(e))
    if run is None:
        print(f"slurm_task: {run_dir}: {verdict.action} ({verdict.reason}); nothing to do", file=sys.stderr)
        return _end(run_dir, attempt, exit_code=0, status=verdict.action, reason=verdict.reason)
    runs.record_slurm_attempt(run_dir, attempt)
    return _end(run_dir, attempt, **_run(job, run))


def _run(job, run):
    """Start the job holding the run's lock, pass signals on, wait: how the attempt ended, for slurm.json."""
    warned, children = [], []

    def forward(signum, _frame):
        warned.append(signal.Signals(signum).name)
        for child in children:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    for signum in lifecycle.STOP_SIGNALS:  # before the start: a warning that comes then must not kill this process
        signal.signal(signum, forward)
    argv, env = job["argv"], {**os.environ, **job.get("env", {})}
    if os.environ.get(snapshot.ENV):
        argv, env = snapshot.command(argv, env, os.environ[snapshot.ENV])
    several = os.environ.get("RUNKIT_SLURM_SRUN") == "1"
    if several:
        # every task of the allocation runs the argv; one failing ends them all
        argv = ["srun", "--kill-on-bad-exit=1", "--export=ALL", *argv]
    try:
        child = run.start(argv, env, hold=several)
    except OSError as e:
        why = f"cannot start {job['argv'][0]}: {e.strerror}"
        run.fail(why, "LaunchError")
        return dict(exit_code=127, status="failed", reason=why)
    children.append(child)
    beats = lifecycle.Heartbeat()
    beats.add(run)
    code = child.wait()
    beats.close()
    # SLURM warned it: train saves, requeues its task and exits, and the requeue's SIGTERM may kill it on
    # the way out. Stopped, not failed: the task runs again (a job that cannot requeue itself is rerun by
    # the next submission).
    return run.ended(code, warned=warned[0] if warned else None)


def _end(run_dir, attempt, **how):
    """Record how the attempt ended (exit_code, status, reason, signal) and return its exit code."""
    attempt.update(end=time.time(), **how)
    runs.record_slurm_attempt(run_dir, attempt)
    return how["exit_code"]


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
