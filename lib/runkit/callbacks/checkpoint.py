"""Write checkpoints/last.ckpt every N steps and at each epoch end; a kill loses at most N steps."""
from runkit.callbacks import Callback
from runkit.registry import CALLBACKS


@CALLBACKS.register("checkpoint")
class Checkpoint(Callback):
    def __init__(self, every_n_steps=500):
        self.every_n_steps = every_n_steps

    def on_step_end(self, loop):
        if self.every_n_steps and loop.step % self.every_n_steps == 0:
            loop.save_checkpoint()

    def on_epoch_end(self, loop, row):
        loop.save_checkpoint()
