"""A Lightning callback that prints the wall-clock time of the first optimizer step on stderr, for
bench/loop.py, which imports it into `train` through a gin config file (`import first_step`) and selects it
with `training_loop.callbacks = ['first_step']`, so it times the real tool without changing it.
"""
import sys
import time

import pytorch_lightning as pl

from runkit.training.registry import CALLBACKS

PREFIX = "first optimizer step at "


@CALLBACKS.register("first_step")
class FirstStep(pl.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 1:
            print(f"{PREFIX}{time.time():.6f}", file=sys.stderr, flush=True)
