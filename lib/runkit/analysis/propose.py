"""Model-based proposals (docs/search.md): the next points of a grid file's `sample` space, proposed by
Optuna's TPE sampler from the results so far (a collect table). No study is stored anywhere: each call
rebuilds it from the run folders, replaying the rounds from the first.

Round r's points are a function of the sample seed, r, and the results of rounds before r only; so a call
finds the first round with a run neither finished nor failed and prints that round's unfinished runs, and
a sweep killed at any moment proposes the same points when rerun. A point's value is the mean over its runs
(its seeds) of best_<monitor>; a failed or diverged run makes its point the worst value seen so far.
"""
import json
import random
import warnings

from runkit import errors
from runkit.analysis import table
from runkit.rundir import modes
from runkit.sweeps import grid

DONE = ("finished", "failed")


def _optuna():
    import optuna  # only propose imports it (it takes a second): the other tools stay light
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


class Results:
    """The runs of a collect table of runs: status and best_<monitor> by run_dir, and the one monitor/mode."""

    def __init__(self, rows):
        if rows and "epoch" in rows[0] and not any(k.startswith("best_") for k in rows[0]):
            raise errors.BadInput("stdin is a collect --history table; propose reads one row per run: "
                                 "collect $RESULTS_DIR/EXPERIMENT | propose ...")
        self.rows = {table.run_key(r.get("run_dir")): r for r in rows}
        monitors = {(r["monitor"], r.get("mode")) for r in rows if r.get("monitor")}
        if len(monitors) > 1:
            raise errors.BadInput("the runs monitor different metrics: "
                                 f"{', '.join(sorted(f'{m} ({d})' for m, d in monitors))}; propose optimizes one")
        self.monitor, self.mode = next(iter(monitors)) if monitors else (None, None)
        self.mode = self.mode or modes.mode_of(self.monitor or "") or "max"  # a table without modes: by the name

    def status(self, run_dir):
        row = self.rows.get(table.run_key(run_dir))
        return row.get("status") if row else None

    def value(self, run_dir):
        """best_<monitor> of a finished run, or None."""
        row = self.rows.get(table.run_key(run_dir))
        if not row or row.get("status") != "finished" or self.monitor is None:
            return None
        return table.number(row.get(f"best_{self.monitor}"))


def _distributions(optuna, space):
    """Optuna distributions for grid's sample space; a choice is the index of a value (values may be lists)."""
    d = optuna.distributions
    out = {}
    for key, (kind, args) in space.items():
        if kind == "choice":
            out[key] = d.CategoricalDistribution(list(range(len(args))))
        elif kind == "randint":
            out[key] = d.IntDistribution(args[0], args[1])
        else:
            out[key] = d.FloatDistribution(args[0], args[1], log=kind == "loguniform")
    return out


def _point(params, space):
    """Optuna's params as binding values: floats rounded as gridgen rounds sampled ones, choices by index."""
    out = {}
    for key, (kind, args) in space.items():
        value = params[key]
        if kind == "choice":
            value = args[value]
        elif kind in ("uniform", "loguniform"):
            value = min(max(grid.round_sampled(value), args[0]), args[1])
        out[key] = value
    return out


def _params(point, space):
    return {key: args.index(point[key]) if kind == "choice" else point[key]
            for key, (kind, args) in space.items()}


def _round_seed(seed, number):
    """The sampler's seed for round `number`: its own stream, so the random first points of each round differ."""
    return random.Random(f"runkit-propose:{seed}:{number}").randrange(2 ** 31)


UNSUPPORTED = ("grid", "zip", "include", "exclude")


def check(g):
    """GridError unless the grid is a sample space (with fixed bindings, configs and seeds, if any)."""
    if "sample" not in g:
        raise grid.GridError("the grid file has no sample: space to search (docs/grid.md, seeded random sampling)")
    grid.space(g)
    for key in UNSUPPORTED:
        if key in g:
            raise grid.GridError(f"{key}: propose searches the sample space only (seeds repeat each point); "
                                 f"drop {key}, or bind its values in fixed")


def plan(g, grid_path, results_dir, results, batch, startup):
    """(round number, its specs still to run, trials so far) for the first round not done, or (None, [],
    trials) when the sample's n points are all done. trials: [(point, specs, value)] in order."""
    optuna = _optuna()
    n, seed = grid.sample_settings(g)
    space = grid.space(g)
    distributions = _distributions(optuna, space)
    direction = "minimize" if results.mode == "min" else "maximize"
    trials, seen, number = [], set(), 0
    while len(trials) < n:
        number += 1
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(
            seed=_round_seed(seed, number), n_startup_trials=startup))
        _add(optuna, study, trials, space, distributions, direction)
        points = []
        for _attempt in range(20 * batch):  # a point proposed before is told its value and another asked for
            if len(points) == min(batch, n - len(trials)):
                break
            trial = study.ask(distributions)
            point = _point(trial.params, space)
            name = json.dumps(point, sort_keys=True)
            if name in seen:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            seen.add(name)
            points.append(point)
        if not points:  # a small discrete space, every point tried
            break
        specs = grid.expand(g, grid_path, results_dir, points=points)
        todo = [s for s in specs if results.status(s["run_dir"]) not in DONE]
        if todo:
            return number, todo, trials
        for i, point in enumerate(points):
            runs = specs[i::len(points)]  # gridgen's order: the seeds outermost, the sampled points innermost
            values = [results.value(s["run_dir"]) for s in runs]
            value = None if any(v is None for v in values) else sum(values) / len(values)
            trials.append((point, runs, value))
    return None, [], trials


def _add(optuna, study, trials, space, distributions, direction):
    """The trials so far, told to a new study; a failed point gets the worst value seen (FAIL if none)."""
    values = [v for _p, _s, v in trials if v is not None]
    worst = (min if direction == "maximize" else max)(values) if values else None
    for point, _specs, value in trials:
        value = worst if value is None else value
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(state=state, value=value, params=_params(point, space),
                                                  distributions=distributions))


def best(trials, mode):
    done = [t for t in trials if t[2] is not None]
    if not done:
        return None
    return (max if mode != "min" else min)(done, key=lambda t: t[2])
