"""A stand-in job for pipeline tests: writes a run folder whose accuracy peaks at lr = 0.1.

    python lr_bowl.py RUN_DIR -b optimizer.lr=0.01 -b training_loop.seed=0

It is not `train`: runbatch runs any argv, and this one finishes in milliseconds.
"""
import math
import sys

from runkit.rundir import runs
from runkit.sweeps import bindings


def main(run_dir, args):
    config = dict(bindings.parse(b) for b in bindings.split(args[1::2]))
    lr, seed = config["optimizer.lr"], config.get("training_loop.seed", 0)
    runs.write_json(run_dir, runs.BINDINGS, config)
    history = []
    for epoch in range(3):
        acc = 0.95 - 0.1 * (math.log10(lr) + 1) ** 2 - 0.1 / (epoch + 1) + 0.005 * seed
        history.append({"epoch": epoch, "step": 10 * (epoch + 1), "train_loss": 1 - acc, "train_acc": acc,
                        "val_loss": 1 - acc, "val_acc": round(acc, 4), "lr": lr, "time": 0.01})
        runs.write_history(run_dir, history)
    best = max(history, key=lambda r: r["val_acc"])
    runs.write_json(run_dir, runs.METRICS, {"monitor": "val_acc", "mode": "max", "final": history[-1],
                                            "best": {k: best[k] for k in ("val_acc", "val_loss", "epoch")}})
    runs.mark_finished(run_dir)
    print(history[-1]["val_acc"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
