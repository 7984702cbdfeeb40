"""Run specs on this machine: N workers, one process per run, outcomes as they happen.

Each job owns its run through the run's lock, handed to the child (RUNKIT_LOCK_FD), so that two runners on
the same specs never run one run twice; lifecycle.Run does the run folder's part (claim, start, heartbeat,
how it ended). The child's stdout and stderr are appended to the run folder. `train` runs are forked from
one warm process per batch unless cold=True (runkit.sweeps.warm, docs/warm-runs.md). run_batch is runbatch
without --slurm; its SLURM twin is slurm.runbatch.run_batch, which shares batch.py's rules, not this executor.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runkit import cli, errors
from runkit.rundir import lifecycle, lock, runs
from runkit.sweeps import batch, batch_folder, snapshot, warm
from runkit.sweeps import outcome as outcomes
from runkit.sweeps.attempt import run_attempt
from runkit.sweeps.outcome import Outcome
from runkit.sweeps.progress import Progress
from runkit.sweeps.spec import Spec


def run_batch(specs: list[Spec], jobs: int = 1, gpus: Sequence[str] = (), retries: int = 0,
              restart_changed: bool = False, dry_run: bool = False, freeze: bool = False, progress: bool = False,
              cold: bool = False) -> None:
    """runbatch without --slurm: run what is still to do, printing each outcome (JSON lines) as it comes;
    WorkFailed when a run failed, was stopped or is in conflict, or the batch was interrupted."""
    if dry_run:
        return _dry_run(specs, restart_changed)
    code = _freeze(specs) if freeze else None
    bar = Progress(len(specs)) if progress else None
    counts: dict[str, int] = {}

    def report(outcome: Outcome) -> None:
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        if bar:
            bar.update(outcome)
        cli.write_jsonl(outcome)

    executor = Executor(jobs=jobs, gpus=gpus, retries=retries, restart_changed=restart_changed,
                        report=report, tick=bar.draw if bar else None, code=code, cold=cold)
    if bar:
        bar.running = lambda: executor.running
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _n, _frame: executor.stop())
    executor.run(specs)
    if bar:
        bar.close()
    bad = counts.get("failed", 0) + counts.get("killed", 0)
    if executor.interrupted:
        raise errors.WorkFailed(f"interrupted: {bad} runs failed or were killed, {counts.get('stopped', 0)} stopped, "
                             f"{counts.get('finished', 0)} finished; run it again to go on")
    if bad or counts.get("stopped"):
        raise errors.WorkFailed(f"{bad} of {len(specs)} runs failed or were killed, {counts.get('stopped', 0)} "
                             "stopped; see RUN_DIR/stderr.log (rerun to resume)")
    if counts.get("conflict"):
        raise errors.WorkFailed(f"{counts['conflict']} of {len(specs)} runs conflict with what their folders were made "
                             "from (see each outcome's reason): rerun with --restart-changed to start them over, "
                             "or give them other names")


def _freeze(specs: list[Spec]) -> str:
    """runbatch --snapshot: copy the code into a batch folder next to the run folders; the snapshot's path."""
    root = snapshot.project_root()
    made = snapshot.make(batch_folder.new_batch_dir(specs), root)
    cli.say(f"{snapshot.said(root, made)}")
    return made["snapshot"]


def _dry_run(specs: list[Spec], restart_changed: bool) -> None:
    verdicts = batch.pending(specs, restart_changed)
    for s, verdict in verdicts:
        if verdict.action == "run":
            cli.write_jsonl(s)
        elif verdict.action == "conflict":
            cli.say(f"{s['name']}: conflict: {verdict.reason}")
    todo = sum(v.action == "run" for _, v in verdicts)
    cli.say(f"would run {todo} of {len(specs)} (the others are finished, running or in conflict)")


class Executor:
    """Runs specs with `jobs` workers; calls report(outcome) once per spec, from worker threads, in turn."""

    def __init__(self, jobs: int = 1, gpus: Sequence[str] = (), retries: int = 0, restart_changed: bool = False,
                 report: Callable[[Outcome], None] = print, tick: Callable[[], None] | None = None,
                 code: str | None = None, cold: bool = False) -> None:
        self.jobs, self.gpus, self.retries, self.restart_changed = jobs, list(gpus), retries, restart_changed
        self.code = code  # a code snapshot to run every job from (runbatch --snapshot; runkit.sweeps.snapshot)
        self.report, self.tick = report, tick
        self._lock = threading.Lock()
        self._running: dict[str, Any] = {}  # run_dir -> Popen (or warm.Forked)
        self._stop = threading.Event()
        self.interrupted = False
        self.error: Exception | None = None  # an error that stops the whole batch (no file locks): raised by run()
        # N jobs share the cores: without this each torch job starts a thread per core and they thrash
        # (a digits run took 12.9 s alone with -j 2 on 2 cores, 5.6 s with one thread each)
        self.threads = str(max(1, cores() // jobs))
        self.cold = cold or code is not None or not warm.supported()  # a snapshot's runs start from its code
        self.zygote: warm.Zygote | None = None

    def run(self, specs: list[Spec]) -> None:
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for s in specs:
            todo.put(s)
        workers = [threading.Thread(target=self._work, args=(todo, self._gpu(i)), daemon=True)
                   for i in range(self.jobs)]
        self.beats = lifecycle.Heartbeat(tick=self.tick and self._tick)
        trains = [s for s in specs if warm.is_train(s["argv"])]
        if trains and not self.cold:
            self.zygote = warm.Zygote(self._env(), [m for s in trains for m in warm.config_imports(s["argv"])])
        try:
            for t in workers:
                t.start()
            while any(t.is_alive() for t in workers):
                for t in workers:
                    t.join(0.2)  # short waits keep the main thread free to take signals
        finally:
            self.beats.close()
            if self.zygote:
                self.zygote.close()
        if self.error:
            raise self.error

    def stop(self) -> None:
        """Start nothing more; SIGTERM the running jobs (train checkpoints and exits); a second stop SIGKILLs them
        and every process they started (each job leads a process group of its own)."""
        signum = signal.SIGKILL if self.interrupted else signal.SIGTERM
        self.interrupted = True
        self._stop.set()
        with self._lock:
            for proc in self._running.values():
                try:
                    if signum == signal.SIGKILL and proc.poll() is None:
                        os.killpg(proc.pid, signum)  # the job leads its own group: what it started dies too
                    else:
                        proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    @property
    def running(self) -> int:
        """How many jobs are running now."""
        return len(self._running)

    def _env(self, extra: Mapping[str, str] = {}) -> dict[str, str]:
        return {"OMP_NUM_THREADS": self.threads, **os.environ, **dict(extra)}

    def _gpu(self, slot: int) -> str | None:
        return self.gpus[slot % len(self.gpus)] if self.gpus else None

    def _tick(self) -> None:
        with self._lock:
            if self.tick:
                self.tick()

    def _work(self, todo: queue.SimpleQueue[Spec], gpu: str | None) -> None:
        while True:
            try:
                spec = todo.get_nowait()
            except queue.Empty:
                return
            if self._stop.is_set():
                outcome = outcomes.outcome(spec, "skipped", reason="interrupted")
            else:
                try:
                    outcome = self._run_one(spec, gpu)
                except lock.NoLocks as e:  # no run can be owned here: stop the batch, one clear line
                    self.error = e
                    self._stop.set()
                    return
                except OSError as e:  # the run folder cannot be made or written: this run fails, not the batch
                    outcome = outcomes.outcome(spec, "failed", reason=f"{e.strerror}: {e.filename}", **_on(gpu))
            with self._lock:
                self.report(outcome)

    def _run_one(self, spec: Spec, gpu: str | None) -> Outcome:
        started, attempts = time.monotonic(), 0
        while True:
            run, verdict = batch.claim(spec, self.restart_changed, retry=attempts > 0)
            if run is None:
                return outcomes.not_run(spec, verdict, attempts=attempts, duration=time.monotonic() - started,
                                        **_on(gpu))
            attempts += 1
            how = self._launch(spec, run, gpu)
            if how["status"] in ("finished", "stopped") or attempts > self.retries or self._stop.is_set():
                return outcomes.outcome(spec, duration=time.monotonic() - started, attempts=attempts, **how,
                                        **_on(gpu))

    def _launch(self, spec: Spec, run: lifecycle.Run, gpu: str | None) -> lifecycle.Ending:
        """One attempt (runkit.sweeps.attempt): its output appended to the run folder, its process listed as
        running for stop() to signal."""
        env = self._env(spec.get("env", {}))
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        argv = spec["argv"]
        if self.code:
            argv, env = snapshot.command(argv, env, self.code)
        launch = self.zygote.popen if self.zygote and self.zygote.takes(argv, env) else subprocess.Popen
        ran = []

        def started(proc: subprocess.Popen | warm.Forked) -> None:
            ran.append(proc)
            with self._lock:
                self._running[spec["run_dir"]] = proc
            if self._stop.is_set():  # a stop that came while it was starting
                proc.terminate()

        def exited(_proc: object) -> None:
            with self._lock:
                del self._running[spec["run_dir"]]
        with open(runs.path(spec["run_dir"], runs.STDOUT), "ab") as out, \
                open(runs.path(spec["run_dir"], runs.STDERR), "ab") as err:
            # its own session: a Ctrl-C reaches runbatch alone, which passes on one SIGTERM
            how = run_attempt(run, argv, env, self.beats, spec["argv"][0], launch=launch, on_start=started,
                              on_exit=exited, stdout=out, stderr=err, start_new_session=True)
        if how["status"] == "failed" and ran:  # what the job said is there (one that never started said nothing)
            how["reason"] = f"{how['reason']} (see stderr.log)"
        return how


def cores() -> int:
    """The cores this process may use (all of them where the OS cannot say, as on macOS)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _on(gpu: str | None) -> dict[str, Any]:
    """The outcome's gpu field, present only for runs given a GPU (runbatch --gpus)."""
    return {} if gpu is None else {"gpu": gpu}
