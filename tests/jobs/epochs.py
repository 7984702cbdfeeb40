"""A stand-in for train in runbatch tests: trains 'epochs' that take no time, resumably.

    python epochs.py RUN_DIR [CONFIG.gin ...] -b training_loop.n_epochs=2 -b optimizer.momentum=0.9 [-b job.sleep=1]

Like train it writes bindings.json (its -b bindings), appends a line to train.log at each start, continues
history.csv up to n_epochs (each row: epoch, step = the start that wrote it, momentum), and on SIGTERM or
SIGUSR1 stops after the current epoch and exits 128+N. It is not train: it runs in milliseconds
(job.sleep: seconds per epoch, to be signalled).
"""
import signal
import sys
import time

from runkit.rundir import runs
from runkit.sweeps import bindings


def main(run_dir, args):
    config = dict(bindings.parse(b) for b in bindings.split(args[i + 1] for i, a in enumerate(args) if a == "-b"))
    runs.write_json(run_dir, runs.BINDINGS, config)
    with open(runs.path(run_dir, runs.LOG), "a", encoding="utf-8") as log:
        log.write("started\n")
    with open(runs.path(run_dir, runs.LOG), encoding="utf-8") as log:
        start = len(log.readlines())
    stop = []
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda n, _frame: stop.append(n))
    history = runs.read_history(run_dir)
    for epoch in range(len(history) + 1, config.get("training_loop.n_epochs", 1) + 1):
        time.sleep(config.get("job.sleep", 0))
        history.append({"epoch": epoch, "step": start, "momentum": config.get("optimizer.momentum")})
        runs.write_history(run_dir, history)
        if stop:
            return 128 + stop[0]
    return 0


def progress(run_dir):
    """{"starts": how many times it started, "epochs": [[epoch, start, momentum], ...]} (for the tests)."""
    try:
        with open(runs.path(run_dir, runs.LOG), encoding="utf-8") as log:
            starts = len(log.readlines())
    except FileNotFoundError:
        starts = 0
    return {"starts": starts, "epochs": [[r["epoch"], r["step"], r.get("momentum")] for r in runs.read_history(run_dir)]}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
