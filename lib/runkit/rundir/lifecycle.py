"""A run folder's lifecycle, owned in one place, so that a status means the same whoever runs the job.

    run = Run(run_dir)
    if run.claim():                    # the run's lock, held from here on (False: another process owns it)
        run.record(spec)               # spec.json: what the run is made from (docs/spec.md)
        proc = run.start(argv, env)    # the child inherits the lock (kept here too); error.json, STOPPED go
        beats.add(run)                 # a Heartbeat keeps HEARTBEAT fresh while the child lives
        how = run.ended(proc.wait())   # FINISHED, STOPPED or error.json, then the lock goes
                                       # (or run.not_started(why) when start raised OSError)

The statuses an attempt leaves (runs.status): `finished` when the job exits 0; `stopped` when it exits
128+N for a stop signal N (SIGTERM, SIGUSR1, SIGUSR2, SIGINT: train writes a checkpoint, then exits so;
rerunning resumes), or, under SLURM, dies by a signal after a warning was passed on to it; `failed` for
any other exit or a kill; `failed` with exit code 127 when the job could not start. Every ending is written
while the lock is held. The local runner and the SLURM task both go through one attempt runner
(runkit.sweeps.attempt), which calls these in this order.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from runkit.rundir import lock, runs
from runkit.rundir.lock import Folder
from runkit.timestamps import now_iso

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)
CANNOT_START = 127  # the exit code of an attempt whose job could not start, as a shell says it


class _Ending(TypedDict):
    status: str              # finished | stopped | failed | killed
    exit_code: int | None
    signal: str | None       # "SIGTERM": what stopped or killed it
    reason: str | None


class Ending(_Ending, total=False):
    """How an attempt ended, as the outcome line and slurm.json say it (docs/spec.md 'Outcomes')."""
    warm: bool               # forked from the batch's warm process (runkit.sweeps.attempt adds it)


class Run:
    """One run folder and, once owned, its lock (rundir.lock.Lock; handed to the child at start)."""

    def __init__(self, run_dir: Folder, held: lock.Lock | None = None) -> None:
        self.run_dir, self.lock = run_dir, held
        self.created = False  # the folder did not exist before train owned it (own): undo() removes it

    @classmethod
    def own(cls, run_dir: Folder) -> Run | None:
        """The run as train owns it (lock.Lock.take: inherited, the launcher's, or claimed); None if another
        process holds it."""
        created = not os.path.exists(run_dir)
        held = lock.Lock.take(run_dir)
        if held is None:
            return None
        run = cls(run_dir, held)
        run.created = created
        return run

    @property
    def fd(self) -> int | None:
        return self.lock.fd if self.lock else None

    def claim(self) -> bool:
        """Take the run's lock without waiting; False if another live process holds it."""
        self.lock = lock.Lock.claim(self.run_dir)
        return self.lock is not None

    def release(self) -> None:
        """Give the lock back (a claim that found nothing to do; the attempt recorded)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def clear(self) -> None:
        """Start over: remove what train wrote (runs.clear); runners' records and other files stay."""
        runs.clear(self.run_dir)

    def undo(self) -> None:
        """The config proved bad once the attempt began (a rerun would fail the same way): the folder goes if
        this attempt made it, else back to what was there before train (clear), so the fixed rerun starts afresh."""
        if self.created:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            self.clear()  # back to what was there before train

    def begin(self) -> None:
        """A new attempt starts: the last one's ending (error.json, STOPPED, FINISHED) goes, and the run beats."""
        runs.remove(self.run_dir, runs.ERROR, runs.STOPPED, runs.FINISHED)
        runs.touch(self.run_dir, runs.HEARTBEAT)

    def record(self, spec_record: dict) -> None:
        """Write spec.json: what this run is made from, compared with the next spec that names the folder."""
        runs.write_json(self.run_dir, runs.SPEC, spec_record)

    def start(self, argv: list[str], env: Mapping[str, str] | None = None, hold: bool = False,
              launch: Callable[..., Any] = subprocess.Popen, **popen: Any) -> Any:
        """Start the job holding the run's lock (RUNKIT_LOCK_FD); the Popen, or OSError if it cannot start,
        the lock still held so that not_started() records why before it goes.

        This process keeps its copy of the lock too, until ended() has recorded how the attempt ended: were
        the lock to die with the job, another runner could claim the run before FINISHED is written, and run
        it again. hold: the job's processes are not this one's children (srun starts them), so the lock is
        not passed on; RUNKIT_LOCK_OWNER names this process instead, and train trusts an owner that the lock
        file names (lock.held_by_launcher). launch: what starts it, Popen or one of its look-alikes (a run
        forked from a warm process: runkit.sweeps.warm).
        """
        env = dict(env if env is not None else os.environ)
        if hold:
            env["RUNKIT_LOCK_OWNER"] = lock.owner(self.run_dir)
        else:
            env["RUNKIT_LOCK_FD"] = str(self.fd)
        try:
            self.begin()
        except BaseException:
            self.release()
            raise
        return launch(argv, stdin=subprocess.DEVNULL, env=env, pass_fds=() if hold else (self.fd,), **popen)

    def beat(self) -> None:
        """Touch HEARTBEAT: the run is alive (read by machines that cannot see this one's lock)."""
        try:
            runs.touch(self.run_dir, runs.HEARTBEAT)
        except OSError:
            pass

    def finish(self) -> None:
        if runs.status(self.run_dir) != "finished":
            runs.mark_finished(self.run_dir)  # a generic job says it finished by exiting 0

    def fail(self, error: str, kind: str, traceback: str | None = None) -> None:
        """error.json (unless the job wrote its own): the last attempt failed."""
        runs.remove(self.run_dir, runs.STOPPED)
        runs.mark_failed(self.run_dir, error, kind, traceback)

    def stop(self, signal_name: str) -> None:
        """STOPPED: a signal stopped the last attempt after a checkpoint; rerunning resumes it."""
        runs.remove(self.run_dir, runs.ERROR)
        runs.write_atomic(runs.path(self.run_dir, runs.STOPPED),
                          f"{signal_name} {now_iso()}\n")

    def not_started(self, why: str) -> Ending:
        """Record that the job could not start (no such program, not executable): error.json, written while the
        lock is held, then the lock goes; the exit code is a shell's for a command it cannot run."""
        try:
            self.fail(why, "LaunchError")
            return dict(status="failed", exit_code=CANNOT_START, signal=None, reason=why)
        finally:
            self.release()

    def give_up(self, why: str, kind: str) -> None:
        """Record that the run fails without an attempt (requeued too often): error.json, then the lock goes."""
        try:
            self.fail(why, kind)
        finally:
            self.release()

    def ended(self, code: int, warned: str | None = None) -> Ending:
        """Record how the attempt ended, from its exit status (Popen's: -N for a kill by signal N) and the
        signal passed on to it, if any, then let the lock go; returns {status, exit_code, signal, reason}."""
        try:
            return self._ended(code, warned)
        finally:
            self.release()

    def _ended(self, code: int, warned: str | None) -> Ending:
        if code == 0:
            self.finish()
            return dict(status="finished", exit_code=0, signal=None, reason=None)
        stop = code - 128 if code > 128 and code - 128 in STOP_SIGNALS else None
        if stop or (code < 0 and warned):
            name = signal_name(stop or -code)
            self.stop(name)
            return dict(status="stopped", exit_code=code if code > 0 else 128 - code, signal=name,
                        reason=f"stopped by {warned or name}; rerun to resume")
        if code < 0:
            name = signal_name(-code)
            self.fail(f"killed by {name}", "Signal")
            return dict(status="killed", exit_code=128 - code, signal=name, reason=f"killed by {name}")
        self.fail(f"exited with code {code}", "ExitCode")
        return dict(status="failed", exit_code=code, signal=None, reason=f"exited with code {code}")


def signal_name(number: int) -> str:
    return signal.Signals(number).name if number in signal.valid_signals() else str(number)


class Heartbeat:
    """Keeps the HEARTBEAT of every run added fresh, from one thread; `tick` (if given) is called every second."""

    def __init__(self, tick: Callable[[], None] | None = None) -> None:
        self._runs: set[Run] = set()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._tick = tick
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
        self._thread.start()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs.add(run)

    def discard(self, run: Run) -> None:
        with self._lock:
            self._runs.discard(run)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(runs.HEARTBEAT_EVERY, 1.0)):
            if time.monotonic() - last >= runs.HEARTBEAT_EVERY:
                last = time.monotonic()
                with self._lock:
                    beating = list(self._runs)
                for run in beating:
                    run.beat()
            if self._tick:
                self._tick()
