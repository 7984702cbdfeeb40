"""Killing `train` with SIGKILL where a test can tell that the rerun resumed, and from where.

Two ways: `kill_callback` makes a run kill itself at a chosen optimizer step (deterministic: just after a
periodic checkpoint, the rerun must resume from that step and no other); `random_kills` kills a run at
random moments, and redraws a moment that came before the run's first checkpoint (such a kill tests no
resume: the rerun would train from scratch and match trivially). Either way the rerun's "resumed at epoch E,
step S" line (train.log, stderr) is checked against the checkpoint the kill left (`assert_resumed`).
"""
import os
import re
import signal
import subprocess
import time

from runkit.rundir import checkpoints, runs
from runkit.training import checkpoint_io

KILL_AT = '''
"""A test's callback: SIGKILL to this process (rank 0 of a distributed run) just after optimizer step
$KILL_AT, once the checkpoints saved before it are written (runkit writes them in the background); when
training starts, each rank writes its pid to $KILL_PIDS/rank<N>."""
import os
import signal

import pytorch_lightning as pl

from runkit.training import checkpoint_io
from runkit.training.registry import CALLBACKS


@CALLBACKS.register("kill_at")
class KillAt(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        if os.environ.get("KILL_PIDS"):
            with open(os.path.join(os.environ["KILL_PIDS"], f"rank{trainer.global_rank}"), "w") as f:
                f.write(str(os.getpid()))

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_rank == 0 and trainer.global_step == int(os.environ.get("KILL_AT", "-1")):
            checkpoint_io.writer(trainer).wait()
            os.kill(os.getpid(), signal.SIGKILL)
'''
RESUMED = re.compile(r"resumed at epoch (\d+), step (\d+)")
MAX_DRAWS = 20  # redraws of a moment before the first checkpoint; all 20 there means no checkpoint is written


def kill_callback(folder, monkeypatch):
    """A config file adding the `kill_at` callback (its module put on PYTHONPATH): with KILL_AT=step in the
    environment, the run SIGKILLs itself just after that optimizer step (Lightning runs user callbacks
    before runkit's recorder, so a checkpoint due at that very step is not written)."""
    (folder / "kill_at.py").write_text(KILL_AT)
    (folder / "kill_at.gin").write_text("import kill_at\ntraining_loop.callbacks = ['kill_at']\n")
    monkeypatch.setenv("PYTHONPATH", f"{folder}{os.pathsep}{os.environ['PYTHONPATH']}")
    return folder / "kill_at.gin"


def start(argv):
    return subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_attempt(run, attempt, proc, timeout=120):
    """Until the attempt's training started (meta.json counts attempts when the fit starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if (runs.read_json(run, runs.META) or {}).get("attempts") == attempt:
                return
        except runs.CorruptRun:
            pass
        time.sleep(0.01)
    raise AssertionError(f"attempt {attempt} did not start: {proc.poll()} {proc.stderr.read()}")


def wait_for_checkpoint(run, proc, timeout=120):
    """Until the run folder holds a whole last.ckpt (its digest is written after it), or the process ended."""
    digest = run / runs.CHECKPOINTS / (checkpoints.LAST + checkpoints.DIGEST)
    deadline = time.monotonic() + timeout
    while not digest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def assert_killed(proc):
    """The process died by SIGKILL (not by finishing, failing or a graceful stop); returns its stderr."""
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}, not killed by -9:\n{err}"
    return err


def random_kills(run, argv, rng, window, kills):
    """Kill `train argv` with -9 `kills` times, each `uniform(0, window)` seconds after its attempt started.
    A kill that left no checkpoint is drawn again, from the moment the next attempt has written its first
    checkpoint (a busy machine may take longer than the window to reach it), up to MAX_DRAWS times in all.
    Returns the step of the checkpoint the last kill left, which the rerun must resume from."""
    attempt, draws, early, step = 0, 0, 0, 0
    while kills:
        assert draws < MAX_DRAWS, f"{draws} kills in a row left no checkpoint: is one written?"
        attempt, draws = attempt + 1, draws + 1
        proc = start(argv)
        wait_for_attempt(run, attempt, proc)
        if early:  # a redraw: its moment is drawn from this attempt's first checkpoint on
            wait_for_checkpoint(run, proc)
        time.sleep(rng.uniform(0.0, window))
        proc.kill()
        assert_killed(proc)
        assert runs.status(run) != "finished", f"the run finished before kill {attempt}"
        step = checkpoint_io.checkpoint_step(run)
        if step > 0:
            kills, early = kills - 1, 0
        else:
            early += 1
    return step


def resume_point(stderr):
    """(epoch, step) of train's "resumed at epoch E, step S" line, or None where it started afresh."""
    found = RESUMED.findall(stderr)
    assert len(found) <= 1, found
    return tuple(map(int, found[0])) if found else None


def assert_resumed(stderr, step, steps_per_epoch):
    """The rerun resumed from the checkpoint at `step`: in epoch step // steps_per_epoch + 1 (a checkpoint
    at an epoch's end resumes at the start of the next)."""
    assert step > 0, "no checkpoint: nothing to resume from"
    expected = (step // steps_per_epoch + 1, step)
    assert resume_point(stderr) == expected, f"expected 'resumed at epoch {expected[0]}, step {step}' in:\n{stderr}"


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
