"""Run specs on this machine: N workers, one process per run, outcomes as they happen.

Each job owns its run through the run's lock, handed to the child (RUNKIT_LOCK_FD), so that two runners on
the same specs never run one run twice. The child's stdout and stderr are appended to the run folder.
runbatch's --slurm mode reuses batch.py's rules, not this executor.
"""
import os
import queue
import signal
import subprocess
import threading
import time

from runkit import batch, runs


class Executor:
    """Runs specs with `jobs` workers; calls report(outcome) once per spec, from worker threads, in turn."""

    def __init__(self, jobs=1, gpus=(), retries=0, report=print, tick=None):
        self.jobs, self.gpus, self.retries = jobs, list(gpus), retries
        self.report, self.tick = report, tick
        self._lock = threading.Lock()
        self._running = {}                # run_dir -> Popen
        self._stop = threading.Event()
        self.interrupted = False
        # N jobs share the cores: without this each torch job starts a thread per core and they thrash
        # (a digits run took 12.9 s alone with -j 2 on 2 cores, 5.6 s with one thread each)
        self.threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))

    def run(self, specs):
        todo = queue.SimpleQueue()
        for s in specs:
            todo.put(s)
        workers = [threading.Thread(target=self._work, args=(todo, self._gpu(i)), daemon=True)
                   for i in range(self.jobs)]
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        for t in workers + [beat]:
            t.start()
        while any(t.is_alive() for t in workers):
            for t in workers:
                t.join(0.2)  # short waits keep the main thread free to take signals
        self._stop.set()

    def stop(self):
        """Start nothing more; SIGTERM the running jobs (train checkpoints and exits); a second stop SIGKILLs them."""
        signum = signal.SIGKILL if self.interrupted else signal.SIGTERM
        self.interrupted = True
        self._stop.set()
        with self._lock:
            for proc in self._running.values():
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    @property
    def running(self):
        """How many jobs are running now."""
        return len(self._running)

    def _gpu(self, slot):
        return self.gpus[slot % len(self.gpus)] if self.gpus else None

    def _work(self, todo, gpu):
        while True:
            try:
                spec = todo.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                outcome = _outcome(spec, "skipped", reason="interrupted")
            else:
                try:
                    outcome = self._run_one(spec, gpu)
                except OSError as e:  # the run folder cannot be made or written: this run fails, not the batch
                    outcome = _outcome(spec, "failed", reason=f"{e.strerror}: {e.filename}", gpu=gpu)
            with self._lock:
                self.report(outcome)

    def _run_one(self, spec, gpu):
        run_dir, started, attempts = spec["run_dir"], time.monotonic(), 0
        while True:
            fd, reason = batch.claim(run_dir, retry=attempts > 0)
            if fd is None:
                return _outcome(spec, "skipped", reason=reason, attempts=attempts,
                                duration=time.monotonic() - started, gpu=gpu)
            attempts += 1
            code, error = self._launch(spec, fd, gpu)
            done = dict(attempts=attempts, gpu=gpu)
            if code == 0:
                if runs.status(run_dir) != "finished":
                    runs.mark_finished(run_dir)  # a generic job says it finished by exiting 0
                return _outcome(spec, "finished", exit_code=0, duration=time.monotonic() - started, **done)
            if code is None:
                runs.mark_failed(run_dir, error, "LaunchError")
                return _outcome(spec, "failed", reason=error, duration=time.monotonic() - started, **done)
            if code < 0:
                name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
                runs.mark_failed(run_dir, f"killed by {name}", "Signal")
                status, extra = "killed", dict(signal=name)
            else:
                runs.mark_failed(run_dir, f"exited with code {code} (see stderr.log)", "ExitCode")
                status, extra = "failed", dict(exit_code=code)
            if attempts > self.retries or self._stop.is_set():
                return _outcome(spec, status, duration=time.monotonic() - started, **extra, **done)

    def _launch(self, spec, fd, gpu):
        """Start the job holding the run's lock; (exit code, None) when it ends, (None, why) if it cannot start."""
        run_dir = spec["run_dir"]
        env = {"OMP_NUM_THREADS": self.threads, **os.environ, **spec.get("env", {}), "RUNKIT_LOCK_FD": str(fd)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        try:
            runs.remove(run_dir, runs.ERROR)  # a new attempt starts
            runs.touch(run_dir, runs.HEARTBEAT)
            with open(runs.path(run_dir, runs.STDOUT), "ab") as out, open(runs.path(run_dir, runs.STDERR), "ab") as err:
                try:
                    # its own session: a Ctrl-C reaches runbatch alone, which passes on one SIGTERM
                    proc = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                            env=env, pass_fds=(fd,), start_new_session=True)
                except OSError as e:
                    return None, f"cannot start {spec['argv'][0]}: {e.strerror}"
        finally:
            os.close(fd)  # the child holds the lock now; it dies with the child
        with self._lock:
            self._running[run_dir] = proc
        if self._stop.is_set():  # a stop that came while it was starting
            proc.terminate()
        try:
            return proc.wait(), None
        finally:
            with self._lock:
                del self._running[run_dir]

    def _heartbeat(self):
        """Keep the heartbeat of every running job fresh, so collect and other runners see it alive."""
        while not self._stop.wait(min(runs.HEARTBEAT_EVERY, 1.0)):
            with self._lock:
                dirs = list(self._running)
            now = time.time()
            for run_dir in dirs:
                try:
                    if now - os.stat(runs.path(run_dir, runs.HEARTBEAT)).st_mtime >= runs.HEARTBEAT_EVERY:
                        runs.touch(run_dir, runs.HEARTBEAT)
                except OSError:
                    pass
            if self.tick:
                with self._lock:
                    self.tick()


def _outcome(spec, status, exit_code=None, signal=None, duration=0.0, attempts=0, reason=None, gpu=None):
    """One line of runbatch's output (docs/spec.md, 'Outcomes')."""
    out = {"name": spec["name"], "run_dir": spec["run_dir"], "status": status, "exit_code": exit_code,
           "signal": signal, "duration": round(duration, 3), "attempts": attempts, "reason": reason}
    if gpu is not None:
        out["gpu"] = gpu
    return out
