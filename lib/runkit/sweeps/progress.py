"""runbatch's progress bar: one line on stderr, redrawn as jobs end and every second."""
import sys
import time


class Progress:
    """done/total, running, failed, elapsed; `running` is a callable that counts the jobs now running."""

    def __init__(self, total):
        self.total, self.done, self.bad, self.started = total, 0, 0, time.monotonic()
        self.running = lambda: 0

    def update(self, outcome):
        self.done += 1
        self.bad += outcome["status"] in ("failed", "killed")
        self.draw()

    def draw(self):
        width = 30
        fill = width * self.done // max(self.total, 1)
        elapsed = int(time.monotonic() - self.started)
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total}"
                         f"  running {self.running()}  failed {self.bad}  {elapsed // 60}:{elapsed % 60:02d} ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
