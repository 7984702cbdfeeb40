"""collect vs a pandas-per-run loader in the style of the original template's load_HC, on synthetic runs.

    .venv/bin/python bench/collect.py [N ...]      # default: 1000 10000

Writes N finished run folders (through runkit.runs) into a temporary folder, then times, wall clock, best
of 3: `collect DIR > /dev/null` as a process (start-up included) and, in this process, a loader that
reads each run's history.csv with pandas.read_csv and parses its config.gin line by line.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lib"))

from runkit import runs  # noqa: E402


def make_runs(root, n):
    for i in range(n):
        lr, seed = 10 ** -(i % 5), i // 5
        run_dir = os.path.join(root, f"lr={lr}_seed={seed}")
        os.makedirs(run_dir)
        config = {"optimizer.lr": lr, "training_loop.seed": seed, "training_loop.n_epochs": 5}
        runs.write_json(run_dir, runs.BINDINGS, config)
        runs.write_atomic(runs.path(run_dir, runs.CONFIG), "".join(f"{k} = {v!r}\n" for k, v in config.items()))
        history = [{"epoch": e, "step": 10 * e, "train_loss": 1 / (e + 1), "train_acc": 0.5, "val_loss": 0.9,
                    "val_acc": 0.8 + e / 100, "lr": lr, "time": 1.0} for e in range(5)]
        runs.write_history(run_dir, history)
        runs.write_json(run_dir, runs.METRICS, {"final": history[-1], "best": {"val_acc": 0.84, "val_loss": 0.9,
                                                                                  "epoch": 4}})
        runs.mark_finished(run_dir)


def load_hc_style(root):
    """The seed template's way: a DataFrame per run plus a config parse, concatenated."""
    import pandas as pd
    frames = []
    for name in sorted(os.listdir(root)):
        run_dir = os.path.join(root, name)
        history = pd.read_csv(os.path.join(run_dir, "history.csv"))
        with open(os.path.join(run_dir, "config.gin")) as f:
            for line in f:
                key, _, value = line.partition(" = ")
                history[key] = value.strip()
        frames.append(history)
    return pd.concat(frames)


def best_of(times, f):
    out = []
    for _ in range(times):
        start = time.perf_counter()
        f()
        out.append(time.perf_counter() - start)
    return min(out)


def main(sizes):
    collect = [sys.executable, str(REPO / "tools" / "collect")]
    for n in sizes:
        with tempfile.TemporaryDirectory() as root:
            make_runs(root, n)
            ours = best_of(3, lambda: subprocess.run(collect + [root], stdout=subprocess.DEVNULL, check=True))
            theirs = best_of(3, lambda: load_hc_style(root))
            print(f"{n:>6} runs: collect {ours:.3f} s, load_HC-style pandas loader {theirs:.3f} s, "
                  f"ratio {theirs / ours:.1f}x")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
