"""A callback that prints the wall-clock time of the first optimizer step on stderr, for bench/loop.py.

bench/loop.py imports it into `train` through a gin config file (`import first_step`) and selects it with
`training_loop.callbacks = ['first_step']`, so it times the real tool without changing it.
"""
import sys
import time

from runkit.callbacks import Callback
from runkit.registry import CALLBACKS

PREFIX = "first optimizer step at "


@CALLBACKS.register("first_step")
class FirstStep(Callback):
    def on_step_end(self, loop):
        if loop.step == 1:
            print(f"{PREFIX}{time.time():.6f}", file=sys.stderr, flush=True)
