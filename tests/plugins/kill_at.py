"""A callback that kills its own process with SIGKILL at given training steps, once each (a marker file per
step in `marker_dir` remembers it fired), once the checkpoints saved before that step are written (runkit
writes them in the background): a deterministic kill -9 in the middle of an epoch, for resume tests. Named in a config by import path (`training_loop.callbacks = ['kill_at.KillAt']`), with tests/plugins
on PYTHONPATH; `LightningKillAt` is the same for a run on the unified `lightning` package. In a run of several
processes, `rank` kills only that one (the others must die with it)."""
import os
import signal

import lightning.pytorch as lightning_pl
import pytorch_lightning as pl

from runkit.training import checkpoint_io


class _Kill:
    def __init__(self, steps=(), marker_dir=".", rank=None):
        self.steps, self.marker_dir, self.rank = set(steps), marker_dir, rank

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        marker = os.path.join(self.marker_dir, f"killed_at_{trainer.global_step}")
        if trainer.global_step in self.steps and not os.path.exists(marker):
            open(marker, "w").close()
            checkpoint_io.writer(trainer).wait()
            os.kill(os.getpid(), signal.SIGKILL)


class KillAt(_Kill, pl.Callback):
    pass


class LightningKillAt(_Kill, lightning_pl.Callback):
    pass
