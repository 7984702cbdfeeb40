"""One task of a `runbatch --slurm` job array: run spec number SLURM_ARRAY_TASK_ID of a batch.

    python -m runkit.slurm_task BATCH/specs.jsonl TASK_ID      (the last line of BATCH/job.sbatch)

It is the batch shell's process (the script `exec`s it), so SLURM's warning signal reaches it; it passes
SIGUSR1, SIGUSR2, SIGTERM and SIGINT on to the job, which checkpoints and requeues itself (train does).
Like the local runner it owns the run through its lock, keeps HEARTBEAT fresh, writes FINISHED when the
job exits 0 and error.json when it fails, so any command works; it records each attempt (SLURM ids, host,
times, exit code) in the run's slurm.json. The argv is started directly, never through a shell.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from runkit import batch, runs, spec

FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


def main(specs_file, task_id):
    with open(specs_file, encoding="utf-8") as stream:
        job = spec.read(stream, specs_file)[int(task_id)]
    run_dir = job["run_dir"]
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    attempt = {"job_id": os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID"),
               "task_id": task_id, "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "restart_count": restarts,
               "host": socket.gethostname(), "start": time.time()}
    limit = int(os.environ.get("RUNKIT_SLURM_MAX_REQUEUES", "20"))
    if restarts > limit:
        # Requeued again and again without finishing: stop here rather than loop forever.
        why = f"requeued {restarts} time{'s' * (restarts != 1)} (limit {limit}: runbatch --max-requeues)"
        runs.mark_failed(run_dir, why, "TooManyRequeues")
        return _end(run_dir, attempt, exit_code=1, status="failed", reason=why)
    fd, reason = batch.claim(run_dir, retry=restarts > 0)
    if fd is None:
        print(f"slurm_task: {run_dir} is {reason}; nothing to do", file=sys.stderr)
        return _end(run_dir, attempt, exit_code=0, status="skipped", reason=reason)
    runs.record_slurm_attempt(run_dir, attempt)
    return _end(run_dir, attempt, **_run(job, fd))


def _run(job, fd):
    """Start the job holding the run's lock, pass signals on, wait: how the attempt ended, for slurm.json."""
    run_dir = job["run_dir"]
    env = {**os.environ, **job.get("env", {}), "RUNKIT_LOCK_FD": str(fd)}
    signalled, children = [], []

    def forward(signum, _frame):
        signalled.append(signal.Signals(signum).name)
        for child in children:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    for signum in FORWARDED:  # before the start: a warning that comes then must not kill this process
        signal.signal(signum, forward)
    runs.remove(run_dir, runs.ERROR)  # a new attempt starts
    runs.touch(run_dir, runs.HEARTBEAT)
    try:
        child = subprocess.Popen(job["argv"], stdin=subprocess.DEVNULL, env=env, pass_fds=(fd,))
    except OSError as e:
        why = f"cannot start {job['argv'][0]}: {e.strerror}"
        runs.mark_failed(run_dir, why, "LaunchError")
        return dict(exit_code=127, status="failed", reason=why)
    finally:
        os.close(fd)  # the child holds the lock now
    children.append(child)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(run_dir, stop), daemon=True).start()
    code = child.wait()
    stop.set()
    if code == 0:
        if runs.status(run_dir) != "finished":
            runs.mark_finished(run_dir)  # a generic job says it finished by exiting 0
        return dict(exit_code=0, status="finished")
    if signalled:
        # SLURM warned it: train saves, requeues its task and exits, and the requeue's SIGTERM may kill it
        # on the way out. Not a failure: the task runs again (a job that cannot requeue itself is rerun
        # by the next submission).
        return dict(exit_code=code if code >= 0 else 128 - code, status="preempted",
                    reason=f"stopped by {signalled[0]}")
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        runs.mark_failed(run_dir, f"killed by {name}", "Signal")
        return dict(exit_code=128 - code, status="killed", reason=f"killed by {name}", signal=name)
    runs.mark_failed(run_dir, f"exited with code {code}", "ExitCode")
    return dict(exit_code=code, status="failed", reason=f"exited with code {code}")


def _heartbeat(run_dir, stop):
    while not stop.wait(runs.HEARTBEAT_EVERY):
        try:
            runs.touch(run_dir, runs.HEARTBEAT)
        except OSError:
            pass


def _end(run_dir, attempt, **how):
    """Record how the attempt ended (exit_code, status, reason, signal) and return its exit code."""
    attempt.update(end=time.time(), **how)
    runs.record_slurm_attempt(run_dir, attempt)
    return how["exit_code"]


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
