"""Write each epoch's history row to TensorBoard event files in tb/."""
from runkit.callbacks import Callback
from runkit.registry import CALLBACKS


@CALLBACKS.register("tensorboard")
class TensorBoard(Callback):
    def on_epoch_end(self, loop, row):
        for name, value in row.items():
            if name not in ("epoch", "step", "time") and value is not None:
                loop.log_scalar(f"epoch/{name}", value, row["step"])
        loop.flush_scalars()
