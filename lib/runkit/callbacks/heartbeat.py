"""Touch HEARTBEAT every runs.HEARTBEAT_EVERY seconds from a thread, so a slow step never looks dead."""
import threading

from runkit import runs
from runkit.callbacks import Callback
from runkit.registry import CALLBACKS


@CALLBACKS.register("heartbeat")
class Heartbeat(Callback):
    def __init__(self, every=runs.HEARTBEAT_EVERY):
        self.every = every
        self._stop = threading.Event()
        self._thread = None

    def on_fit_start(self, loop):
        if not loop.is_writer:
            return
        runs.touch(loop.run_dir, runs.HEARTBEAT)
        self._thread = threading.Thread(target=self._beat, args=(loop.run_dir,), daemon=True, name="heartbeat")
        self._thread.start()

    def _beat(self, run_dir):
        while not self._stop.wait(self.every):
            runs.touch(run_dir, runs.HEARTBEAT)

    def on_close(self, loop):
        self._stop.set()
        if self._thread:
            self._thread.join()
