"""A stand-in for train in runbatch tests: trains 'epochs' that take no time, resumably.

    python epochs.py RUN_DIR [CONFIG.gin ...] -b training_loop.n_epochs=2 -b optimizer.momentum=0.9 [-b job.sleep=1]

Like train it writes bindings.json (its -b bindings), continues its history (RUN_DIR/epochs.json: one
[epoch, start, momentum] per epoch, `start` counting the job's starts) up to n_epochs, and on SIGTERM or SIGUSR1 stops after the current epoch and
exits 128+N. It is not train: it runs in milliseconds (job.sleep: seconds per epoch, to be signalled).
"""
import signal
import sys
import time

from runkit import bindings, runs


def main(run_dir, args):
    config = dict(bindings.parse(b) for b in bindings.split(args[i + 1] for i, a in enumerate(args) if a == "-b"))
    runs.write_json(run_dir, runs.BINDINGS, config)
    history = runs.read_json(run_dir, "epochs.json", {"starts": 0, "epochs": []})
    history["starts"] += 1
    runs.write_json(run_dir, "epochs.json", history)
    stop = []
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda n, _frame: stop.append(n))
    for epoch in range(len(history["epochs"]) + 1, config.get("training_loop.n_epochs", 1) + 1):
        time.sleep(config.get("job.sleep", 0))
        history["epochs"].append([epoch, history["starts"], config.get("optimizer.momentum")])
        runs.write_json(run_dir, "epochs.json", history)
        if stop:
            return 128 + stop[0]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
