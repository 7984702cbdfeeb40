"""A callback that holds runkit's checkpoint writer, for tests of saves written off the training loop.

Its state, saved in every checkpoint, holds an object that, when the writer thread pickles it for a
checkpoint of one of the optimizer `steps`, writes `writing_at_<step>` in `marker_dir` and waits `seconds`
before the save goes on (for a step of `until_killed`, until the process is killed); once a step (the
marker remembers). With
`kill_at`, the process SIGKILLs itself just after that optimizer step, once the saves of `until_killed` are held:
a kill -9 in the middle of a background save, at a known moment. Named by import path
(`training_loop.callbacks = ['hold_writer.HoldWriter']`) with tests/plugins on PYTHONPATH.
"""
import os
import signal
import threading
import time

import pytorch_lightning as pl


class Holder:
    def __init__(self, step, marker_dir, seconds, hold):
        self.step, self.marker_dir, self.seconds, self.hold = step, marker_dir, seconds, hold  # seconds None: forever

    def __reduce__(self):
        """Holds in the writer thread only (runkit's staging pickles it on the training loop's thread first)."""
        in_writer = threading.current_thread() is not threading.main_thread()
        marker = os.path.join(self.marker_dir, f"writing_at_{self.step}")
        if self.hold and in_writer and not os.path.exists(marker):
            open(marker, "w").close()
            deadline = time.monotonic() + (self.seconds if self.seconds is not None else 600)
            while time.monotonic() < deadline:
                time.sleep(0.05)
        return Holder, (self.step, self.marker_dir, self.seconds, self.hold and not in_writer)


class HoldWriter(pl.Callback):
    def __init__(self, steps=(), until_killed=(), marker_dir=".", seconds=1.0, kill_at=None):
        self.steps, self.until_killed, self.marker_dir = set(steps), set(until_killed), marker_dir
        self.seconds, self.kill_at = seconds, kill_at

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer

    def state_dict(self):
        step = self.trainer.global_step
        seconds = None if step in self.until_killed else self.seconds
        return {"holder": Holder(step, self.marker_dir, seconds, step in self.steps | self.until_killed)}

    def load_state_dict(self, state):
        pass

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        killed = os.path.join(self.marker_dir, f"killed_at_{trainer.global_step}")
        if trainer.global_step != self.kill_at or os.path.exists(killed):
            return
        deadline = time.monotonic() + 60  # no held save by then (none in the background): no kill
        while not all(os.path.exists(os.path.join(self.marker_dir, f"writing_at_{s}")) for s in self.until_killed):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        open(killed, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
