"""train's attempt at its run folder, owned in one place: train asks it the folder's questions, runs the job
inside it, and records the attempt's one ending through it (docs/protocol.md 'Who owns an attempt').

    attempt = Attempt(run_dir)                # NotARunFolder unless missing, empty or a run folder
    attempt.done(n_epochs, changed)           # metrics.json if this request already finished here (else None)
    attempt.check_free()                      # RunBusy if another process holds the run
    with attempt:                             # the run adopted: inherited, the launcher's, or claimed (RunBusy)
        attempt.begin()                       # claimed here: a new attempt begins and the run beats
        attempt.record_request(bindings, command)
        ...                                   # the job
        attempt.finish(metrics)               # or stop(signum), fail(error, kind, traceback), undo()
                                              # leaving: the heartbeat stops, a lock claimed here goes

A run a runner claimed (RUNKIT_LOCK_FD) or launched (RUNKIT_LOCK_OWNER under srun) was begun by that runner
(lifecycle.Run.start), which beats it and records its ending from the exit status too (runkit.sweeps.attempt):
the attempt begins and beats it only when train claimed the lock itself. Every ending is written while the lock
is held, once: a second one, or one after the lock went, is a bug and raises.
"""
from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from runkit.errors import BadInput
from runkit.rundir import checkpoints, lifecycle, lock, runs
from runkit.rundir.lock import Folder


class RunBusy(BadInput):
    """Another process holds the run's lock."""


class OtherRequest(BadInput, ValueError):
    """The folder holds a run of another request (changed bindings, more epochs than asked)."""


class Attempt:
    """One attempt of train at run_dir: its questions before owning the run, then, inside `with`, its ending."""

    def __init__(self, run_dir: Folder, heartbeat: Callable[[], lifecycle.Heartbeat] = lifecycle.Heartbeat) -> None:
        runs.check_usable(run_dir)
        self.run_dir, self._heartbeat = run_dir, heartbeat
        self.run: lifecycle.Run | None = None
        self.beats: lifecycle.Heartbeat | None = None
        self.begun = False
        self.ending: str | None = None  # finished | stopped | failed | undone

    # ---- before owning the run: what the folder says ------------------------------------------------

    def done(self, n_epochs: int, changed: Callable[[dict], list[str]]) -> dict | None:
        """metrics.json if the folder finished this very request as asked (runs.done): nothing to train. None
        if there is training to do. OtherRequest if the folder's bindings.json differs from the request
        (changed(stored): each difference but those that continue a run) or it trained more than n_epochs."""
        stored = runs.read_json(self.run_dir, runs.BINDINGS) if os.path.isdir(self.run_dir) else None
        if stored is None:
            return None
        differences = changed(stored)
        if differences:
            raise OtherRequest(f"{self.run_dir} was run with other bindings ({'; '.join(differences)}); "
                               f"use another folder, or --restart to start it over")
        trained = runs.epochs_trained(self.run_dir)
        if trained is not None and trained > n_epochs:
            raise OtherRequest(f"{self.run_dir} already trained {trained} epochs, more than "
                               f"training_loop.n_epochs={n_epochs}; use --restart to start it over")
        return runs.read_json(self.run_dir, runs.METRICS) if runs.done(self.run_dir, n_epochs) else None

    def check_free(self) -> None:
        """RunBusy if a live process other than this one's runner or launcher holds the run (asked before the
        data loads; owning the run asks again)."""
        if lock.held_elsewhere(self.run_dir):
            raise RunBusy(f"run is held by another process: {self.run_dir}")

    def resume_point(self) -> tuple[str | None, str | None]:
        """The newest sound checkpoint (None: start fresh) and why it is not last.ckpt (checkpoints.resume_point)."""
        return checkpoints.resume_point(self.run_dir)

    def best_checkpoint(self) -> str | None:
        """checkpoints/best.ckpt if the run wrote one."""
        best = runs.best_checkpoint_path(self.run_dir)
        return best if os.path.exists(best) else None

    def first_threads(self) -> int | None:
        """The torch thread count the run's first attempt computed with (meta.json's torch_threads), if known."""
        try:
            meta = runs.read_json(self.run_dir, runs.META) if os.path.isdir(self.run_dir) else None
        except runs.CorruptRun:
            return None
        return (meta or {}).get("torch_threads")

    # ---- owning the run ---------------------------------------------------------------------------

    def __enter__(self) -> Attempt:
        """Adopt the run (lifecycle.Run.own: inherited, the launcher's, or claimed); RunBusy if another holds it."""
        self.run = lifecycle.Run.own(self.run_dir)
        if self.run is None:
            raise RunBusy(f"run is held by another process: {self.run_dir}")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 where: TracebackType | None) -> None:
        """An attempt begun that raised past every ending failed (error.json); then the heartbeat stops and a
        lock claimed here goes (an inherited one stays with the runner, which records its ending too)."""
        try:
            if isinstance(error, Exception) and self.begun and self.ending is None:
                self.fail(str(error), type(error).__name__, "".join(traceback.format_exception(error)))
        finally:
            if self.beats is not None:
                self.beats.close()
                self.beats = None
            if self.run is not None:
                self.run.release()  # the Python API may train the same run again in this process

    @property
    def claimed(self) -> bool:
        """True if train claimed the run's lock itself: no runner began the attempt or beats the run."""
        held = self._held().lock
        return held is not None and held.how == "claimed"

    @property
    def created(self) -> bool:
        """True if the folder did not exist before this attempt owned it."""
        return self._held().created

    def restart(self) -> None:
        """`train --restart`: remove what train wrote (runs.clear); the run still beats."""
        self._held().clear()
        self._held().beat()

    def open_log(self) -> IO[str]:
        """train.log, to append this attempt's messages to."""
        self._held()
        return open(runs.path(self.run_dir, runs.LOG), "a", encoding="utf-8")

    def begin(self) -> None:
        """The attempt begins: claimed here, the last ending goes and the run beats from now on; a run its
        runner or launcher holds was begun by it (lifecycle.Run.start), which beats it."""
        run = self._held()
        if self.claimed:
            run.begin()
            self.beats = self._heartbeat()
            self.beats.add(run)
        self.begun = True

    def record_request(self, bindings: dict[str, Any], command: str) -> None:
        """bindings.json (what the next request is compared with) and command.txt."""
        self._held()
        runs.write_json(self.run_dir, runs.BINDINGS, bindings)
        runs.write_atomic(runs.path(self.run_dir, runs.COMMAND), command + "\n")

    # ---- the one ending ---------------------------------------------------------------------------

    def finish(self, metrics: dict[str, Any]) -> None:
        """metrics.json, then FINISHED: the run is complete."""
        self._end("finished")
        runs.write_json(self.run_dir, runs.METRICS, metrics)
        self._held().finish()

    def stop(self, signum: int) -> None:
        """STOPPED: a stop signal ended the attempt after a checkpoint; rerunning resumes it."""
        self._end("stopped")
        self._held().stop(lifecycle.signal_name(signum))

    def fail(self, error: str, kind: str, where: str | None = None) -> None:
        """error.json (runs.mark_failed): the attempt failed, `where` its traceback; the run stays resumable."""
        self._end("failed")
        self._held().fail(error, kind, where)

    def undo(self) -> None:
        """The config proved bad once the attempt began (a rerun would fail the same way): the folder goes if
        this attempt made it, else it is cleared (lifecycle.Run.undo), so the fixed rerun starts afresh."""
        self._end("undone")
        self._held().undo()

    def _end(self, ending: str) -> None:
        self._held()
        if self.ending is not None:
            raise RuntimeError(f"{self.run_dir}: the attempt already ended ({self.ending}), cannot end {ending}")
        self.ending = ending

    def _held(self) -> lifecycle.Run:
        """The run, owned: RuntimeError outside `with` or once its lock went (nothing is written then)."""
        if self.run is None or self.run.lock is None:
            raise RuntimeError(f"{self.run_dir}: the attempt does not hold the run")
        return self.run
