"""Run specs on this machine: N workers, one process per run, outcomes as they happen.

Each job owns its run through the run's lock, handed to the child (RUNKIT_LOCK_FD), so that two runners on
the same specs never run one run twice; lifecycle.Run does the run folder's part (claim, start, heartbeat,
how it ended). The child's stdout and stderr are appended to the run folder.
runbatch's --slurm mode reuses batch.py's rules, not this executor.
"""
import os
import queue
import signal
import threading
import time

from runkit.rundir import lifecycle, runs
from runkit.sweeps import batch, snapshot


class Executor:
    """Runs specs with `jobs` workers; calls report(outcome) once per spec, from worker threads, in turn."""

    def __init__(self, jobs=1, gpus=(), retries=0, restart_changed=False, report=print, tick=None, code=None):
        self.jobs, self.gpus, self.retries, self.restart_changed = jobs, list(gpus), retries, restart_changed
        self.code = code  # a code snapshot to run every job from (runbatch --snapshot; runkit.sweeps.snapshot)
        self.report, self.tick = report, tick
        self._lock = threading.Lock()
        self._running = {}                # run_dir -> Popen
        self._stop = threading.Event()
        self.interrupted = False
        self.error = None                 # an error that stops the whole batch (no file locks): raised by run()
        # N jobs share the cores: without this each torch job starts a thread per core and they thrash
        # (a digits run took 12.9 s alone with -j 2 on 2 cores, 5.6 s with one thread each)
        self.threads = str(max(1, cores() // jobs))

    def run(self, specs):
        todo = queue.SimpleQueue()
        for s in specs:
            todo.put(s)
        workers = [threading.Thread(target=self._work, args=(todo, self._gpu(i)), daemon=True)
                   for i in range(self.jobs)]
        self.beats = lifecycle.Heartbeat(tick=self.tick and self._tick)
        for t in workers:
            t.start()
        while any(t.is_alive() for t in workers):
            for t in workers:
                t.join(0.2)  # short waits keep the main thread free to take signals
        self.beats.close()
        if self.error:
            raise self.error

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

    def _tick(self):
        with self._lock:
            self.tick()

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
                except runs.NoLocks as e:  # no run can be owned here: stop the batch, one clear line
                    self.error = e
                    self._stop.set()
                    return
                except OSError as e:  # the run folder cannot be made or written: this run fails, not the batch
                    outcome = _outcome(spec, "failed", reason=f"{e.strerror}: {e.filename}", gpu=gpu)
            with self._lock:
                self.report(outcome)

    def _run_one(self, spec, gpu):
        started, attempts = time.monotonic(), 0
        while True:
            run, verdict = batch.claim(spec, self.restart_changed, retry=attempts > 0)
            if run is None:
                extra = {"changed": list(verdict.changes)} if verdict.action == "conflict" else {}
                return _outcome(spec, verdict.action, reason=verdict.reason, attempts=attempts,
                                duration=time.monotonic() - started, gpu=gpu, **extra)
            attempts += 1
            how = self._launch(spec, run, gpu)
            if how["status"] in ("finished", "stopped") or attempts > self.retries or self._stop.is_set():
                return _outcome(spec, duration=time.monotonic() - started, attempts=attempts, gpu=gpu, **how)

    def _launch(self, spec, run, gpu):
        """Start the job holding the run's lock, wait, and record how it ended (lifecycle.Run.ended)."""
        env = {"OMP_NUM_THREADS": self.threads, **os.environ, **spec.get("env", {})}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        argv = spec["argv"]
        if self.code:
            argv, env = snapshot.command(argv, env, self.code)
        with open(runs.path(spec["run_dir"], runs.STDOUT), "ab") as out, \
                open(runs.path(spec["run_dir"], runs.STDERR), "ab") as err:
            try:
                # its own session: a Ctrl-C reaches runbatch alone, which passes on one SIGTERM
                proc = run.start(argv, env, stdout=out, stderr=err, start_new_session=True)
            except OSError as e:
                why = f"cannot start {spec['argv'][0]}: {e.strerror}"
                run.fail(why, "LaunchError")
                return dict(status="failed", reason=why)
        with self._lock:
            self._running[spec["run_dir"]] = proc
        self.beats.add(run)
        if self._stop.is_set():  # a stop that came while it was starting
            proc.terminate()
        try:
            code = proc.wait()
        finally:
            self.beats.discard(run)
            with self._lock:
                del self._running[spec["run_dir"]]
        how = run.ended(code)
        if how["status"] == "failed":
            how["reason"] += " (see stderr.log)"
        return how


def cores():
    """The cores this process may use (all of them where the OS cannot say, as on macOS)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _outcome(spec, status, exit_code=None, signal=None, duration=0.0, attempts=0, reason=None, gpu=None,
             changed=None):
    """One line of runbatch's output (docs/spec.md, 'Outcomes')."""
    out = {"name": spec["name"], "run_dir": spec["run_dir"], "status": status, "exit_code": exit_code,
           "signal": signal, "duration": round(duration, 3), "attempts": attempts, "reason": reason}
    if changed is not None:
        out["changed"] = changed
    if gpu is not None:
        out["gpu"] = gpu
    return out
