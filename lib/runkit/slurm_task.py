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
        runs.mark_failed(run_dir, f"requeued {restarts} times (limit {limit}, --max-requeues)", "TooManyRequeues")
        return _end(run_dir, attempt, 1, status="failed")
    fd, reason = batch.claim(run_dir, retry=restarts > 0)
    if fd is None:
        print(f"slurm_task: {run_dir} is {reason}; nothing to do", file=sys.stderr)
        return _end(run_dir, attempt, 0, status="skipped", reason=reason)
    runs.record_slurm_attempt(run_dir, attempt)
    return _end(run_dir, attempt, *_run(job, fd))


def _run(job, fd):
    """Start the job holding the run's lock, pass signals on, wait: (exit code, status, reason)."""
    run_dir = job["run_dir"]
    env = {**os.environ, **job.get("env", {}), "RUNKIT_LOCK_FD": str(fd)}
    runs.clear_failure(run_dir)
    runs.touch(run_dir, runs.HEARTBEAT)
    try:
        child = subprocess.Popen(job["argv"], stdin=subprocess.DEVNULL, env=env, pass_fds=(fd,))
    except OSError as e:
        why = f"cannot start {job['argv'][0]}: {e.strerror}"
        runs.mark_failed(run_dir, why, "LaunchError")
        return 127, "failed", why
    finally:
        os.close(fd)  # the child holds the lock now
    signalled = []

    def forward(signum, _frame):
        signalled.append(signal.Signals(signum).name)
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(run_dir, stop), daemon=True).start()
    code = child.wait()
    stop.set()
    if code == 0:
        if runs.status(run_dir) != "finished":
            runs.mark_finished(run_dir)  # a generic job says it finished by exiting 0
        return 0, "finished", None
    if signalled:
        # Stopped on SLURM's warning: the job saved and requeued itself (train does); not a failure.
        return code, "preempted", f"stopped by {signalled[0]}"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        runs.mark_failed(run_dir, f"killed by {name}", "Signal")
        return 128 - code, "killed", f"killed by {name}"
    runs.mark_failed(run_dir, f"exited with code {code}", "ExitCode")
    return code, "failed", f"exited with code {code}"


def _heartbeat(run_dir, stop):
    while not stop.wait(runs.HEARTBEAT_EVERY):
        try:
            runs.touch(run_dir, runs.HEARTBEAT)
        except OSError:
            pass


def _end(run_dir, attempt, code, status, reason=None):
    attempt.update(end=time.time(), exit_code=code, status=status, reason=reason)
    runs.record_slurm_attempt(run_dir, attempt)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
