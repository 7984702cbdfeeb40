#!/usr/bin/env python3
"""collect against a pandas-per-run loader in the style of the original template's load_HC.

Writes 100,000 finished run folders once (through runkit.rundir.runs, in a temporary folder, in parts of 1,000,
9,000 and 90,000), then times, alternating, `collect PARTS... > /dev/null` as a process (start-up
included) against a loader that, in this process with pandas already imported (as in a notebook), reads each
run's history.csv with pandas.read_csv and parses its config.gin line by line. Target: at least 10x faster,
and linear: the time per 1,000 folders (past collect's fixed cost, its time on a single run) stays flat.

    .venv/bin/python bench/collect.py [--quick]      # --quick: 1,000 and 10,000 folders only
"""
import os
import statistics
import sys
import tempfile

import pandas as pd

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))

import report  # noqa: E402
from runkit.rundir import runs  # noqa: E402

PARTS = [1000, 9000, 90000]  # cumulative sizes 1,000, 10,000, 100,000


def make_runs(root, first, n):
    """n finished run folders numbered from `first`, with the files train writes that collect reads."""
    for i in range(first, first + n):
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


def load_hc_style(roots):
    """The seed template's way: a DataFrame per run plus a config parse, concatenated."""
    frames = []
    for root in roots:
        for name in sorted(os.listdir(root)):
            run_dir = os.path.join(root, name)
            history = pd.read_csv(os.path.join(run_dir, "history.csv"))
            with open(os.path.join(run_dir, "config.gin")) as f:
                for line in f:
                    key, _, value = line.partition(" = ")
                    history[key] = value.strip()
            frames.append(history)
    return pd.concat(frames)


def main():
    quick = report.quick_flag(__doc__, "1,000 and 10,000 folders, 2 repeats")
    parts, repeat = (PARTS[:2], 2) if quick else (PARTS, 3)
    collect = [sys.executable, os.path.join(REPO, "tools", "collect")]
    report.header("collect (a process) against a load_HC-style pandas loader (in process)")
    with tempfile.TemporaryDirectory() as root:
        one = os.path.join(root, "one")
        make_runs(one, 0, 1)
        fixed = statistics.median(report.seconds(collect + [one]) for _ in range(5))
        per_1k, done = {}, 0
        for number, n in enumerate(parts):
            make_runs(os.path.join(root, f"part{number}"), done, n)
            done += n
            dirs = [os.path.join(root, f"part{k}") for k in range(number + 1)]
            ours, anchor = report.alternate(lambda dirs=dirs: report.seconds(collect + dirs),
                                            lambda dirs=dirs: report.clock(load_hc_style, dirs), repeat if done < 50000 else 2)
            report.row(f"collect {done:,} runs", ours, anchor, min_ratio=10)
            per_1k[done] = ((min(ours) - fixed) / done * 1000, min(anchor) / done * 1000)
    print(f"  collect's fixed cost (start-up and one run, median): {fixed:.3f} s; per 1,000 folders past it, "
          "collect / loader: " + ", ".join(f"{n:,}: {c:.3f} / {a:.3f} s" for n, (c, a) in per_1k.items()))
    flat = max(c for c, _ in per_1k.values()) <= 1.5 * min(c for c, _ in per_1k.values())
    print(f"  linear: collect's time per 1,000 folders within 1.5x across sizes: {'PASS' if flat else 'MISS'}")


if __name__ == "__main__":
    main()
