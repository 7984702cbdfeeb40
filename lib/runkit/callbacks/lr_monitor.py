"""Log the learning rate to TensorBoard every N steps (the history keeps one value per epoch)."""
from runkit.callbacks import Callback
from runkit.registry import CALLBACKS


@CALLBACKS.register("lr_monitor")
class LRMonitor(Callback):
    def __init__(self, every_n_steps=50):
        self.every_n_steps = every_n_steps

    def on_step_end(self, loop):
        if loop.step % self.every_n_steps == 0:
            loop.log_scalar("step/lr", loop.optimizer.param_groups[0]["lr"], loop.step)
