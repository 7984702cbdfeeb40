#!/usr/bin/env python3
"""The full grid, random search, TPE and successive halving on the digits MLP (experiments/search/): the best
validation accuracy each finds, and the epochs it spends, against the full grid's.

Runs `make search_grid`, `make search_random`, `make search_tpe` and `make search_halving` (this checkout's
tools, offline) into RESULTS_DIR (a temporary folder unless --results names one: a folder that holds finished
searches reruns nothing, so --results redraws the table and the picture in seconds), then reads the run
folders back with `collect` and prints one Markdown table row per search. Target: halving or TPE within 0.5
points of the full grid's best accuracy with at most a third of its epochs. With --out DIR it also writes
DIR/search_curves.csv (best found against epochs spent, a table `plot` reads) and DIR/search.png, drawn by
`plot epochs --hue search`.

    .venv/bin/python bench/search.py [--results DIR] [--out DIR] [--jobs 2]

Epochs spent: a run's epochs in its history (a halving run continued to 27 epochs counts 27, once). The
curves: runs in the order they started (grid, random, TPE: each run's epochs, then the best so far), and
halving rung by rung (every run's epochs up to the rung's, the best among them up to there).
"""
import argparse
import atexit
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))

from runkit.cli import TOOLS  # noqa: E402 - every tool, one shim each

SEARCHES = ("grid", "random", "tpe", "halving")
LABEL = {"grid": "full grid (45 x 27 epochs)", "random": "random search (15 x 27)",
         "tpe": "TPE, propose -n 3 (15 x 27)", "halving": "successive halving, eta 3 (45 x 1 ... 1 x 27)"}
HALVING_RUNGS = (1, 3, 9, 27)  # experiments/search/halving.yaml with --eta 3 --min-epochs 1


def shims():
    """A folder of one shim per tool running this checkout's tools/TOOL with this interpreter (as the tests do)."""
    folder = tempfile.mkdtemp(prefix="runkit-bench-tools-")
    atexit.register(shutil.rmtree, folder, True)
    for name in TOOLS:
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(os.path.join(REPO, 'tools', name))} \"$@\"\n")
        os.chmod(path, 0o755)
    return folder


def run_search(name, env, jobs):
    start = time.perf_counter()
    proc = subprocess.run(["make", "-s", "-o", ".venv/.done", f"RUNKIT_BIN={env['RUNKIT_BIN']}", f"JOBS={jobs}",
                           f"search_{name}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: a run failed (a diverged rate), which a search counts as the worst
        sys.exit(f"bench/search.py: make search_{name} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds


def histories(folder, env):
    """{run_dir: {"status", "values": {epoch: val_acc}, "start"}} from collect --history and meta.json."""
    out = subprocess.run(["collect", "--history", "--format", "jsonl", folder], env=env, capture_output=True,
                         text=True, check=True).stdout
    runs = {}
    for line in out.splitlines():
        row = json.loads(line)
        run = runs.setdefault(row["run_dir"], {"name": row["name"], "status": row["status"], "values": {}})
        if row.get("epoch") is not None:
            run["values"][row["epoch"]] = row.get("val_acc")
    for run_dir, run in runs.items():
        with open(os.path.join(run_dir, "meta.json"), encoding="utf-8") as f:
            run["start"] = json.load(f).get("start_time") or ""
    return runs


def best_of(run, upto=None):
    values = [v for e, v in run["values"].items() if v is not None and (upto is None or e <= upto)]
    return max(values, default=None)


def curve(name, runs):
    """[(epochs spent, best val_acc so far)]."""
    points, spent, best = [], 0, None
    if name == "halving":
        for rung in HALVING_RUNGS:
            spent = sum(min(max(r["values"], default=0), rung) for r in runs.values())
            found = [b for b in (best_of(r, rung) for r in runs.values()) if b is not None]
            points.append((spent, max(found)))
        return points
    for run in sorted(runs.values(), key=lambda r: (r["start"], r["name"])):
        spent += max(run["values"], default=0)
        value = best_of(run)
        if value is not None and (best is None or value > best):
            best = value
        if best is not None:
            points.append((spent, best))
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", help="RESULTS_DIR for the searches (default: a temporary folder)")
    parser.add_argument("--out", help="write search_curves.csv and search.png here")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    args = parser.parse_args()
    results = os.path.abspath(args.results) if args.results else tempfile.mkdtemp(prefix="runkit-bench-search-")
    if not args.results:
        atexit.register(shutil.rmtree, results, True)
    tools = shims()
    env = dict(os.environ, RESULTS_DIR=results, RUNKIT_BIN=tools, PATH=os.pathsep.join([tools, os.environ["PATH"]]),
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(REPO, "lib"), os.environ.get("PYTHONPATH")])))
    env.pop("OMP_NUM_THREADS", None)  # runbatch gives each job its share of the cores

    rows, curves = {}, {}
    for name in SEARCHES:
        seconds = run_search(name, env, args.jobs)
        runs = histories(os.path.join(results, f"search_{name}"), env)
        winner = min(runs.values(), key=lambda r: (-(best_of(r) or -1), r["name"]))  # ties: the first name
        rows[name] = {"runs": len(runs), "epochs": sum(max(r["values"], default=0) for r in runs.values()),
                      "best": best_of(winner), "config": winner["name"], "seconds": seconds,
                      "failed": sum(r["status"] == "failed" for r in runs.values())}
        curves[name] = curve(name, runs)
        print(f"search_{name}: {seconds:.0f} s", file=sys.stderr, flush=True)

    grid = rows["grid"]
    print("| search | runs | epochs spent | of the grid's | best val_acc | behind the grid's best | best run | wall clock |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in SEARCHES:
        r = rows[name]
        gap = 100 * (grid["best"] - r["best"])
        print(f"| {LABEL[name]} | {r['runs']} | {r['epochs']} | {r['epochs'] / grid['epochs']:.0%} | "
              f"{100 * r['best']:.2f}% | {gap:.2f} points | `{r['config']}` | {r['seconds']:.0f} s |")
    hits = [n for n in ("tpe", "halving") if 100 * (grid["best"] - rows[n]["best"]) <= 0.5
            and rows[n]["epochs"] <= grid["epochs"] / 3]
    print(f"\ntarget (halving or TPE within 0.5 points with at most a third of the epochs): "
          f"{'PASS (' + ', '.join(hits) + ')' if hits else 'MISS'}")

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        csv_path = os.path.join(args.out, "search_curves.csv")
        with open(csv_path, "w", encoding="utf-8") as f:
            f.write("search,epochs,monitor,mode,best_val_acc\n")
            for name in SEARCHES:
                f.writelines(f"{name},{spent},val_acc,max,{best!r}\n" for spent, best in curves[name])
        with open(csv_path, encoding="utf-8") as f:
            subprocess.run(["plot", "epochs", "--hue", "search", "-o", os.path.join(args.out, "search.png")],
                           stdin=f, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"wrote {csv_path} and {os.path.join(args.out, 'search.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
