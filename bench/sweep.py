#!/usr/bin/env python3
"""A sweep of short runs, three ways: cold (`runbatch -j 2 --cold`, a process per run), warm (`runbatch -j 2`,
runs forked from one warm process, docs/warm-runs.md) and the limit (the same trainings in 2 processes that
import once and train their share one after another). Alternating, in one run, on fresh result folders.

The sweep is the tune_lr grid at 10 epochs (14 digits MLPs) and, unless --quick, a halving rung (45 runs
of 1 epoch). Per-run overhead: a run's wall clock in runbatch's outcome minus its history's training time.
Targets (2 cores): warm overhead median <= 0.3 s; warm >= 4x faster than cold; warm within 1.5x of the limit.

    .venv/bin/python bench/sweep.py [--quick]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "digits_mlp.gin")
JOBS = 2
LIMIT_SLOT = """
import json, sys, torch
from runkit.training import train
torch.set_num_threads(int(sys.argv[2]))
for spec in map(json.loads, open(sys.argv[1])):
    argv = spec["argv"]
    configs = [w for w in argv[2:] if w.endswith(".gin")]
    binds = [argv[i + 1] for i, w in enumerate(argv) if w == "-b"]
    train.train(spec["run_dir"], configs, binds)
"""


def specs(root, case):
    """(name, epochs, lr, seed) for each run of the case, as runbatch specs under root."""
    if case == "tune_lr":
        grid = [(lr, seed, 10) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0) for seed in (0, 1)]
    else:  # a halving rung: 45 configurations of 1 epoch
        grid = [(0.001 * 1.2 ** i, 0, 1) for i in range(45)]
    out = []
    for i, (lr, seed, epochs) in enumerate(grid):
        run_dir = os.path.join(root, f"r{i}")
        out.append({"name": f"r{i}", "run_dir": run_dir,
                    "argv": ["train", run_dir, CONFIG, "-b", f"training_loop.n_epochs={epochs}",
                             "-b", f"optimizer.lr={lr:.6g}", "-b", f"training_loop.seed={seed}"]})
    return out


def environment():
    shims = tempfile.mkdtemp(prefix="bench-sweep-bin-")
    with open(os.path.join(shims, "train"), "w") as f:
        f.write(f"#!/bin/sh\nexec {sys.executable} {os.path.join(REPO, 'tools', 'train')} \"$@\"\n")
    os.chmod(os.path.join(shims, "train"), 0o755)
    return {**os.environ, "PATH": shims + os.pathsep + os.environ["PATH"], "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [os.path.join(REPO, "lib"), os.environ.get("PYTHONPATH")]))}


def batch(case, env, overheads, *flags):
    """Wall seconds of runbatch over the case; appends the median per-run overhead to overheads."""
    with tempfile.TemporaryDirectory() as root:
        todo = specs(root, case)
        text = "".join(json.dumps(s) + "\n" for s in todo)
        out = []
        seconds = report.clock(lambda: out.append(subprocess.run(
            [sys.executable, os.path.join(REPO, "tools", "runbatch"), "-j", str(JOBS), *flags], input=text,
            capture_output=True, text=True, env=env, check=True).stdout))
        outcomes = [json.loads(line) for line in out[0].splitlines()]
        trained = {s["name"]: _history_time(s["run_dir"]) for s in todo}
        overheads.append(statistics.median(o["duration"] - trained[o["name"]] for o in outcomes))
        return seconds


def limit(case, env):
    with tempfile.TemporaryDirectory() as root:
        todo = specs(root, case)
        slots = []
        for slot in range(JOBS):
            path = os.path.join(root, f"slot{slot}.jsonl")
            with open(path, "w") as f:
                f.writelines(json.dumps(s) + "\n" for s in todo[slot::JOBS])
            slots.append(path)

        def both():
            procs = [subprocess.Popen([sys.executable, "-c", LIMIT_SLOT, path, "1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for path in slots]
            assert all(p.wait() == 0 for p in procs)
        return report.clock(both)


def _history_time(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = f.read().splitlines()
    return float(rows[-1].split(",")[rows[0].split(",").index("time")])


def main():
    quick = report.quick_flag(__doc__, "the tune_lr grid only, 1 repeat instead of 3")
    env = environment()
    repeat = 1 if quick else 3
    for case in ("tune_lr",) if quick else ("tune_lr", "rung"):
        warm_over, cold_over = [], []
        ways = {"cold": lambda case=case, over=cold_over: batch(case, env, over, "--cold"),
                "warm": lambda case=case, over=warm_over: batch(case, env, over), "limit": lambda case=case: limit(case, env)}
        figures = {name: [] for name in ways}
        order = list(ways)
        for i in range(repeat):
            for name in order[i % 3:] + order[:i % 3]:
                figures[name].append(ways[name]())
        runs = len(specs("", case))
        report.header(f"{case}: {runs} runs, runbatch -j {JOBS}, warm against cold and against the limit")
        report.row(f"{case} warm vs cold", figures["warm"], figures["cold"], min_ratio=4)
        report.row(f"{case} warm vs limit", figures["warm"], figures["limit"], min_ratio=1 / 1.5)
        report.row(f"{case} overhead/run warm v cold", warm_over, cold_over)
        report.at_most(f"{case} warm overhead/run", warm_over, 0.3)


if __name__ == "__main__":
    main()
