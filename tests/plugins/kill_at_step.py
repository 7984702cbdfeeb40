"""A test's callback (helpers.kills.kill_callback names it in a config): SIGKILL to this process (rank 0 of a
distributed run) just after optimizer step $KILL_AT ($KILL_DELAY seconds later, if set: what runs beside it
may get that far); when training starts, each rank writes its pid to $KILL_PIDS/rank<N>."""
import os
import signal
import time

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
            checkpoint_io.writer(trainer).wait()  # the checkpoints saved before it are written (in the background)
            time.sleep(float(os.environ.get("KILL_DELAY", "0")))
            os.kill(os.getpid(), signal.SIGKILL)
