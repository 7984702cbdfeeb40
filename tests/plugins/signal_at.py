"""A callback that sends its own process a stop signal (SIGTERM unless told) at a given training step, once (a
marker file in `marker_dir` remembers it fired): a deterministic graceful stop in the middle of an epoch, for
resume tests. `LightningSignalAt` is the same for a run on the unified `lightning` package."""
import os
import signal

import lightning.pytorch as lightning_pl
import pytorch_lightning as pl


class _Signal:
    def __init__(self, step=-1, marker_dir=".", signal_name="SIGTERM"):
        self.step, self.marker_dir, self.signum = step, marker_dir, signal.Signals[signal_name]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        marker = os.path.join(self.marker_dir, f"signalled_at_{trainer.global_step}")
        if trainer.global_step == self.step and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), self.signum)


class SignalAt(_Signal, pl.Callback):
    pass


class LightningSignalAt(_Signal, lightning_pl.Callback):
    pass
