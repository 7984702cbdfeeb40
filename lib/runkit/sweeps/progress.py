"""runbatch's progress bar: one line on stderr, redrawn as jobs end and every second."""
from __future__ import annotations

import sys
import time

from runkit.sweeps.outcome import Outcome


class Progress:
    """done/total, running, failed, elapsed; `running` is a callable that counts the jobs now running."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.bad, self.started = total, 0, 0, time.monotonic()
        self.running = lambda: 0

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.bad += outcome["status"] in ("failed", "killed")
        self.draw()

    def draw(self) -> None:
        width = 30
        fill = width * self.done // max(self.total, 1)
        elapsed = int(time.monotonic() - self.started)
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total}"
                         f"  running {self.running()}  failed {self.bad}  {elapsed // 60}:{elapsed % 60:02d} ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
