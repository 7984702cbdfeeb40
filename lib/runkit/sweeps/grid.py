"""Grid files (docs/grid.md): a YAML description of a set of runs, expanded into run specs.

Expansion is deterministic: the same file gives the same specs, in the same order, with the same names,
on every machine. Everything that can be wrong with a file is a GridError naming the key and the fix.
"""
from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from runkit.sweeps import bindings, spec
from runkit.sweeps.grid_file import GridError
from runkit.sweeps.spec import Spec

DEFAULT_COMMAND = ["train", "{run_dir}", "{configs}", "{bindings}"]
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
SIGNIFICANT = 4  # sampled floats keep 4 significant digits, so names stay short and show the exact value


def expand(grid: dict[str, Any], grid_path: str, results_dir: str, points: list[dict] | None = None) -> list[Spec]:
    """Run specs (dicts) for every run the grid describes, in order; GridError if there are none or names clash.

    points: the `sample` axis's points ({binding: value} for each of sample's params), given instead of
    drawn (propose's proposals); the runs are named as if drawn.
    """
    experiment = grid.get("experiment", os.path.basename(os.path.dirname(os.path.abspath(grid_path))))
    if not spec.check_name(experiment):
        raise GridError(f"experiment {experiment!r} is not safe as a folder name (letters, digits, . _ , = + -)")
    configs = [_find_config(c, grid_path) for c in _list(grid, "configs", str)]
    runs, named, fixed = _runs(grid, points)
    if not runs:
        raise GridError("the grid makes no runs (every point excluded, or nothing to vary): see docs/grid.md")
    command, source = _command(grid), _source(grid, results_dir)
    folder = os.path.join(os.path.abspath(results_dir), experiment)
    out: list[Spec] = []
    seen: dict[str, int] = {}
    for number, (run, (name, params)) in enumerate(zip(runs, _names(runs, named, fixed), strict=True), 1):
        if name in seen:
            raise GridError(f"runs {seen[name]} and {number} are both named {name!r} (the same bindings, or "
                            "values that read alike): remove the duplicate or vary something else")
        seen[name] = number
        run_dir = os.path.join(folder, name)
        out.append({"name": name, "run_dir": run_dir, "argv": _argv(command, run_dir, name, configs, run, source),
                    "experiment": experiment, "configs": configs, "bindings": params, "gin_bindings": run})
    return out


# ---- the set of runs ---------------------------------------------------------------------------

def _runs(grid: dict[str, Any],
          points: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """(binding dicts, one per run: fixed x seeds x grid x zip x sample, minus exclude, plus include;
    the keys that name runs: every axis's and include's, the seed last; the fixed bindings)."""
    fixed = _bindings(grid.get("fixed", {}), "fixed")
    axes = [[{key: value} for value in _values(values, f"grid: {key}")]
            for key, values in _bindings(grid.get("grid", {}), "grid", values=False).items()]
    axes += [_zipped(group, n) for n, group in enumerate(_list(grid, "zip", dict), 1)]
    if points is not None:
        params = space(grid)
        axes.append([{key: point[key] for key in params} for point in points])
    elif "sample" in grid:
        axes.append(_sampled(grid["sample"]))
    seed_key = bindings.check_key(grid.get("seed_binding", "training_loop.seed"))
    seeds = _seeds(grid.get("seeds"))
    seed_axis = [[{seed_key: s} for s in seeds]] if seeds else []

    points = [{}]
    for axis in seed_axis + axes:  # the seed axis outermost: a whole sweep with seed 0 comes first
        points = [{**point, **choice} for point in points for choice in axis]
    known = set(fixed) | {key for point in points for key in point}
    excludes = [_bindings(e, f"exclude entry {n}") for n, e in enumerate(_list(grid, "exclude", dict), 1)]
    for n, entry in enumerate(excludes, 1):
        for key in entry:
            if key not in known:
                raise GridError(f"exclude entry {n} names {key!r}, which no axis or fixed binding sets")
    runs = [_ordered({**fixed, **p}, seed_key) for p in points]
    runs = [run for run in runs if not any(_matches(run, e) for e in excludes)]
    named = [key for axis in axes for key in axis[0]]
    for n, entry in enumerate(_list(grid, "include", dict), 1):
        entry = _bindings(entry, f"include entry {n}")
        named += list(entry)
        repeats = [{}] if seed_key in entry or not seeds else [{seed_key: s} for s in seeds]
        runs += [_ordered({**fixed, **entry, **r}, seed_key) for r in repeats]
    named = [k for k in dict.fromkeys(named) if k != seed_key] + ([seed_key] if seed_key in named or seeds else [])
    nothing_set = not (fixed or seed_axis or axes or "include" in grid)
    return ([] if nothing_set else runs), named, fixed


def _ordered(run: dict[str, Any], seed_key: str) -> dict[str, Any]:
    """The seed binding last, so names read 'lr=0.1_seed=0'."""
    if seed_key in run:
        run[seed_key] = run.pop(seed_key)
    return run


def _matches(run: dict[str, Any], entry: dict[str, Any]) -> bool:
    return all(key in run and run[key] == value for key, value in entry.items())


def _zipped(group: dict[str, Any], number: int) -> list[dict[str, Any]]:
    where = f"zip group {number}"
    group = _bindings(group, where, values=False)
    columns = {key: _values(values, f"{where}: {key}") for key, values in group.items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise GridError(f"{where}: lists of different lengths ({', '.join(f'{k}: {len(v)}' for k, v in columns.items())}); "
                        "zipped values vary together, so give each the same number")
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def sample_settings(grid: dict[str, Any]) -> tuple[int, int]:
    """(n, seed) of the grid's `sample`, checked."""
    sample = grid.get("sample")
    if not isinstance(sample, dict) or set(sample) - {"n", "seed", "params"} or "n" not in sample:
        raise GridError("sample: expected {n: N, seed: S, params: {binding: {uniform|loguniform|randint|choice: ...}}}")
    n, seed = sample["n"], sample.get("seed", 0)
    if not isinstance(n, int) or n < 1 or not isinstance(seed, int):
        raise GridError("sample: n must be a positive integer and seed an integer")
    return n, seed


def space(grid: dict[str, Any]) -> dict[str, tuple[str, list]]:
    """The `sample` search space, checked: {binding: (kind, args)} in the order written, kind one of
    DISTRIBUTIONS; args [low, high] or, for choice, the list of values."""
    n, seed = sample_settings(grid)
    params = _bindings(grid["sample"].get("params", {}), "sample: params", values=False)
    if not params:
        raise GridError("sample: params is empty; name at least one binding and its distribution")
    return {key: _check_distribution(key, d) for key, d in params.items()}


def _sampled(sample: object) -> list[dict[str, Any]]:
    """N points drawn with a seeded generator: the same file draws the same points."""
    n, seed = sample_settings({"sample": sample})
    draw = {key: _distribution(kind, args) for key, (kind, args) in space({"sample": sample}).items()}
    rng = random.Random(seed)
    return [{key: f(rng) for key, f in draw.items()} for _ in range(n)]


def _check_distribution(key: str, dist: object) -> tuple[str, list]:
    where = f"sample: {key}"
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise GridError(f"{where}: expected one of {{{': [...]}, {'.join(DISTRIBUTIONS)}: [...]}}")
    kind, args = next(iter(dist.items()))
    if kind == "choice":
        return kind, _values(args, where)
    if not (isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args) and args[0] < args[1]):
        raise GridError(f"{where}: {kind} needs [low, high] with low < high")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise GridError(f"{where}: randint bounds must be integers")
    if kind == "loguniform" and args[0] <= 0:
        raise GridError(f"{where}: loguniform needs a positive low bound")
    return kind, args


def _distribution(kind: str, args: list) -> Callable[[random.Random], Any]:
    """A function of a random.Random drawing one value."""
    if kind == "choice":
        return lambda rng: rng.choice(args)
    low, high = args
    if kind == "randint":
        return lambda rng: rng.randint(low, high)
    if kind == "loguniform":
        return lambda rng: round_sampled(math.exp(rng.uniform(math.log(low), math.log(high))))
    return lambda rng: round_sampled(rng.uniform(low, high))


def round_sampled(x: float) -> float:
    """A sampled float as names show it: SIGNIFICANT significant digits."""
    return float(f"{x:.{SIGNIFICANT}g}")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _seeds(seeds: object) -> list[int]:
    if seeds is None:
        return []
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        return list(range(seeds))
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        return seeds
    raise GridError("seeds: expected a count (seeds: 3 means 0, 1, 2) or a list of integers")


# ---- checking pieces ---------------------------------------------------------------------------

def _bindings(mapping: object, where: str, values: bool = True) -> dict[str, Any]:
    """A {binding: value} mapping with checked names (and values gin can read, unless they are lists of them)."""
    if not isinstance(mapping, dict):
        raise GridError(f"{where}: expected a mapping of binding names (like optimizer.lr) to values")
    for key, value in mapping.items():
        try:
            bindings.check_key(str(key))
            if values:
                bindings.format_value(value)
        except bindings.BindingError as e:
            raise GridError(f"{where}: {e}") from None
    return {str(k): v for k, v in mapping.items()}


def _values(values: object, where: str) -> list:
    if not isinstance(values, list):
        raise GridError(f"{where}: expected a list of values, like [0.1, 0.01]")
    if not values:
        raise GridError(f"{where}: the list of values is empty")
    for value in values:
        try:
            bindings.format_value(value)
        except bindings.BindingError as e:
            raise GridError(f"{where}: {e}") from None
    return values


def _list(grid: dict[str, Any], key: str, kind: type) -> list:
    items = grid.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, kind) for i in items):
        raise GridError(f"{key}: expected a list of {'strings' if kind is str else 'mappings'}")
    return items


def _find_config(name: str, grid_path: str) -> str:
    """A config path as written, or relative to the grid file's folder or any folder above it."""
    if os.path.isabs(name):
        candidates = [name]
    else:
        folder, candidates = os.path.dirname(os.path.abspath(grid_path)), []
        while True:
            candidates.append(os.path.join(folder, name))
            if os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise GridError(f"configs: {name} not found next to the grid file or in a folder above it")


def _command(grid: dict[str, Any]) -> list[str]:
    command = grid.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise GridError("command: expected a non-empty list of strings, like [train, '{run_dir}', '{configs}', '{bindings}']")
    return command


def _source(grid: dict[str, Any], results_dir: str) -> list[str]:
    """`from: SOURCE` (and `from_state: true`) as the words every run's command ends with, `--from SOURCE`
    (`{name}` in them is the run's name); a relative SOURCE is under the results folder."""
    if "from" not in grid:
        if "from_state" in grid:
            raise GridError("from_state: it needs a `from` source (see docs/grid.md)")
        return []
    source, state = grid["from"], grid.get("from_state", False)
    if not isinstance(source, str) or not source:
        raise GridError("from: expected a run folder or checkpoint, like pretrain/base or pretrain/{name}")
    if not isinstance(state, bool):
        raise GridError("from_state: expected true or false")
    return ["--from", os.path.join(os.path.abspath(results_dir), source)] + (["--from-state"] if state else [])


def _argv(command: list[str], run_dir: str, name: str, configs: list[str], run: dict[str, Any],
          source: Sequence[str] = ()) -> list[str]:
    """The command with its placeholders filled: {run_dir} and {name} as one word, {configs} and {bindings} as
    many; then the `from` source's words, {name} in them filled."""
    argv = []
    for word in command:
        if word == "{configs}":
            argv += configs
        elif word == "{bindings}":
            for key, value in run.items():
                argv += ["-b", bindings.format(key, value)]
        else:
            argv.append(word.replace("{run_dir}", run_dir).replace("{name}", name))
    return argv + [word.replace("{name}", name) for word in source]


# ---- names ----------------------------------------------------------------------------------------

def _names(runs: list[dict[str, Any]], named: list[str], fixed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, {short key: value}) per run, as 'lr=0.1_seed=0': the keys the grid declares (axes, include
    entries, the seed), by short name, in that order. A key at the value `fixed` gives it is left out of the
    name, so that runs made before the key became an axis keep their names (docs/grid.md, Names)."""
    short = bindings.short_names(named)
    out = []
    for run in runs:
        params = {short[k]: run[k] for k in named if k in run}
        parts = [(short[k], run[k]) for k in named if k in run and not (k in fixed and _same(run[k], fixed[k]))]
        name = "_".join(f"{_safe(key)}={_safe(_text(value))}" for key, value in parts) or "run"
        if not spec.check_name(name):
            raise GridError(f"run name {name!r} is not safe as a file name or is over 200 characters: "
                            "vary fewer bindings, or use shorter values")
        out.append((name, params))
    return out


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _safe(text: str) -> str:
    """Anything outside letters, digits and . _ , = + - becomes '-'; no '..'."""
    return re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._,=+-]", "-", text))
