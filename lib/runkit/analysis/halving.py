"""Successive halving over run folders (docs/search.md): which runs to train next, from a collect --history
table and the candidate specs. No state of its own: the run folders are the state, so each call answers
from what they hold, and a sweep killed at any moment continues where it stopped.

Rung k trains the runs still in the race to epochs[k] (each a continuation of the same run folder: runbatch
sees a spec that differs only by more training_loop.n_epochs). Rung k+1 keeps the best keep[k+1] of rung
k's runs, judged by the best monitored value among their first epochs[k] epochs (a run's history up to
there never changes, so every later call makes the same choice); ties go to the name first in sort order;
a run that failed (or diverged: no finite value) before reaching epochs[k] is the worst.
"""
import math

from runkit import errors
from runkit.analysis import table
from runkit.rundir import modes
from runkit.sweeps import changes, spec

EPOCHS = changes.CONTINUABLE  # training_loop.n_epochs


def rungs(n, min_epochs, max_epochs, eta):
    """[(epochs, runs kept)] per rung: epochs grow by eta from about min_epochs to max_epochs (the last rung
    trains to max_epochs), the runs kept shrink by eta from n (at least 1)."""
    if min_epochs >= max_epochs:
        return [(max_epochs, n)]
    s = int(math.floor(math.log(max_epochs / min_epochs) / math.log(eta) + 1e-9))
    out = []
    for k in range(s + 1):
        epochs = max(min_epochs, round(max_epochs / eta ** (s - k)))
        if out and epochs <= out[-1][0]:
            continue
        out.append((epochs, max(1, n // eta ** k)))
    return out


class Results:
    """The runs of a collect --history table: status, monitor, mode and {epoch: monitored value} per run_dir."""

    def __init__(self, rows):
        self.runs = {}
        if rows and "epoch" not in rows[0]:
            raise errors.BadInput("stdin is a table of runs; halving reads one row per epoch: "
                                 "collect --history $RESULTS_DIR/EXPERIMENT | halving ...")
        for row in rows:
            run = self.runs.setdefault(table.run_key(row.get("run_dir")), {"status": row.get("status"),
                                                                           "values": {}, "monitor": None, "mode": None})
            if row.get("monitor"):
                run["monitor"], run["mode"] = row["monitor"], row.get("mode")
            epoch = table.number(row.get("epoch"))
            if epoch is not None:
                run["values"][int(epoch)] = row
        monitors = {(r["monitor"], r["mode"]) for r in self.runs.values() if r["monitor"]}
        if len(monitors) > 1:
            raise errors.BadInput("the runs monitor different metrics: "
                                 f"{', '.join(sorted(f'{m} ({d})' for m, d in monitors))}; halving ranks by one")
        self.monitor, self.mode = next(iter(monitors)) if monitors else (None, None)
        self.mode = self.mode or modes.mode_of(self.monitor or "")  # a table without modes: by the metric's name

    def get(self, run_dir):
        return self.runs.get(table.run_key(run_dir))

    def done(self, run_dir, epochs):
        """The run has its result for a rung of `epochs` epochs: its history has them (whether it finished
        there, goes on to a later rung, or was killed in one), or it failed (the worst)."""
        run = self.get(run_dir)
        if run is None:
            return False
        return run["status"] == "failed" or max(run["values"], default=0) >= epochs

    def score(self, run_dir, epochs):
        """The best monitored value among the first `epochs` epochs; None (the worst) if it has none or the run
        did not reach `epochs`."""
        run = self.get(run_dir)
        if run is None or max(run["values"], default=0) < epochs or self.monitor is None:
            return None
        values = [table.number(row.get(self.monitor)) for e, row in run["values"].items() if e <= epochs]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return max(values) if self.mode != "min" else min(values)

    def ranked(self, specs, epochs):
        """The specs best first by score after `epochs` epochs; the worst (None) last; ties by name."""
        sign = -1 if self.mode != "min" else 1

        def key(s):
            score = self.score(s["run_dir"], epochs)
            return (score is None, 0 if score is None else sign * score, s["name"])
        return sorted(specs, key=key)


def next_rung(candidates, results, schedule):
    """(rung number, the specs to run now, the runs in that rung); (None, [], the last rung's runs, best
    first) when every rung is done."""
    alive = list(candidates)
    for k, (epochs, keep) in enumerate(schedule):
        if k:
            alive = results.ranked(alive, schedule[k - 1][0])[:keep]
        todo = [s for s in alive if not results.done(s["run_dir"], epochs)]
        if todo:
            return k, [dict(spec.with_binding(s, EPOCHS, epochs), rung=k) for s in todo], alive
    return None, [], results.ranked(alive, schedule[-1][0])


def max_epochs_of(candidates):
    """The candidates' training_loop.n_epochs, when they all bind the same; else None."""
    values = {s.get("gin_bindings", {}).get(EPOCHS) if isinstance(s.get("gin_bindings"), dict) else None
              for s in candidates}
    value = values.pop() if len(values) == 1 else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
