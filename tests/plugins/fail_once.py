"""A user's callback, imported from a gin config (`import fail_once`, tests/plugins on PYTHONPATH): fails the
run once, at a given step (a marker file remembers it did)."""
import os

import pytorch_lightning as pl

from runkit.training.registry import CALLBACKS


@CALLBACKS.register("fail_once")
class FailOnce(pl.Callback):
    def __init__(self, at_step, marker):
        self.at_step, self.marker = at_step, marker

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.at_step and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("injected failure")
