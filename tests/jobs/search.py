"""A stand-in for train in the search tests: a made-up accuracy of (lr, weight decay, width, epoch), resumable.

    python search.py RUN_DIR -b optimizer.lr=0.1 -b optimizer.weight_decay=1e-4 -b mlp.hidden=[64]
                     -b training_loop.n_epochs=3 [-b job.sleep=0.5]

Like train it writes bindings.json, continues history.csv up to n_epochs (a finished run asked for more
epochs goes on from its last row), writes metrics.json (val_acc, max) and exits 0; a learning rate of 1 or
more diverges: error.json, exit 1. Each epoch it trains is appended to trained.log, so a test sees whether
an epoch ran twice. It is not train: an epoch takes no time (job.sleep: seconds per epoch, to be killed).
"""
import math
import sys
import time

from runkit.rundir import runs
from runkit.sweeps import bindings


def accuracy(lr, weight_decay, width, epoch):
    """Peaks at lr = 0.1, weight decay 1e-4, width 64; a small rate learns slowly."""
    peak = 0.97 - 0.04 * (math.log10(lr) + 1) ** 2 - 0.01 * (math.log10(weight_decay) + 4) ** 2
    peak -= 0.01 * abs(math.log2(width / 64))
    return round(peak - 0.3 * (0.01 / lr) ** 0.5 / epoch, 6)


def main(run_dir, args):
    config = dict(bindings.parse(b) for b in bindings.split(args[i + 1] for i, a in enumerate(args) if a == "-b"))
    runs.write_json(run_dir, runs.BINDINGS, config)
    lr, wd = config["optimizer.lr"], config.get("optimizer.weight_decay", 1e-4)
    width = config.get("mlp.hidden", [64])[0]
    history = runs.read_history(run_dir)
    for epoch in range(len(history) + 1, config.get("training_loop.n_epochs", 1) + 1):
        time.sleep(config.get("job.sleep", 0))
        if lr >= 1:
            runs.write_json(run_dir, runs.ERROR, {"error": "train_loss is nan", "type": "Diverged"})
            return 1
        acc = accuracy(lr, wd, width, epoch)
        history.append({"epoch": epoch, "step": 10 * epoch, "train_loss": 1 - acc, "val_acc": acc, "lr": lr,
                        "time": 0.01 * epoch})
        runs.write_history(run_dir, history)
        with open(runs.path(run_dir, "trained.log"), "a", encoding="utf-8") as log:
            log.write(f"{epoch}\n")
    best = max(history, key=lambda r: r["val_acc"])
    runs.write_json(run_dir, runs.METRICS, {"monitor": "val_acc", "mode": "max", "final": history[-1],
                                            "best": best, "stopped_early": False})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
