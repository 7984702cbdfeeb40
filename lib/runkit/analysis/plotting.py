"""plot's work: read a collect table, group its rows by the hyperparameters that vary, average Y over the
seeds of each group at each X, draw it, say where the best is.

Uses pandas and matplotlib (plot is not a light tool); report reaches it through page.py. The table is read by
runkit.analysis.table, the one reader of a collect table, then typed here.
"""
import json
import math
import os

import pandas as pd

from runkit.analysis import table
from runkit.errors import BadInput
from runkit.rundir import modes

RUN = ("run_dir", "name", "status")  # collect's first columns: which run, not how it was configured
METRIC_START = ("monitor", "mode", "epoch", "step", "error")  # collect puts the hyperparameters before these
METRIC_PREFIXES = ("best_", "final_", "test_")


def read_table(text):
    """A collect table (table.parse: CSV, or JSON lines) as a DataFrame, its columns typed as pandas.read_csv
    types a CSV file; a table without a run_dir column too (plot draws any table)."""
    if not text.strip():
        raise BadInput("stdin is empty: pipe a table in (collect $RESULTS_DIR/tune_lr | plot lr)")
    columns, rows, text_cells = table.parse(text, need_run_dir=False)
    if not text_cells:
        return _lists_as_text(pd.DataFrame(rows, columns=columns))
    return pd.DataFrame({c: _typed([row.get(c) for row in rows]) for c in columns}, columns=columns)


# What pandas.read_csv reads as missing or as a truth value by default
_MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
            "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
_TRUTH = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def _typed(cells):
    """A CSV column's text cells as read_csv types them: numbers, else truth values, else text; missing as NaN."""
    values = pd.Series([math.nan if v is None or v in _MISSING else v for v in cells], dtype=object)
    present = values.dropna()
    if values.empty:  # a header without rows
        return values
    if len(present) and present.isin(list(_TRUTH)).all():
        truths = values.map(_TRUTH)
        return truths.astype(bool) if len(present) == len(values) else truths.astype(object)
    try:
        return pd.to_numeric(values)
    except (TypeError, ValueError):
        return pd.Series(list(values))  # text: pandas' own type for it


def _lists_as_text(frame):
    """A list or dict value (a binding such as hidden=[64, 64]) as its JSON text, as in collect's CSV: a value
    to group by."""
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    return frame


def choose_y(table, y=None):
    """The Y column: --y as named, or best_<y> when only that exists (--y val_mse on a run table);
    by default the monitored metric the monitor column names (best_<monitor>, or <monitor> in a history table)."""
    if y is None:
        monitors = _values(table, "monitor")
        if len(monitors) != 1:
            raise BadInput("name the column to plot with --y: " + (
                f"the runs monitor different metrics ({', '.join(monitors)})" if monitors else
                "the table names no monitored metric (no monitor column, or no run has metrics.json yet)"))
        y = monitors[0]
    return f"best_{y}" if y not in table.columns and f"best_{y}" in table.columns else y


def goal(table, y):
    """("max" or "min", how it was decided): the runs' mode when Y is their monitored metric, else Y's name."""
    metric = y.removeprefix("best_").removeprefix("final_")
    if "monitor" in table.columns and "mode" in table.columns:
        given = _values(table[table["monitor"] == metric], "mode")
        if len(given) == 1 and given[0] in ("max", "min"):
            return given[0], f"the runs' mode for {metric}"
    known = modes.mode_of(metric)
    if known:
        return known, f"the name {y} (docs/run-folder.md#metric-names); --goal sets it"
    return "max", f"{y} is not a name runkit knows, so higher; --goal sets it"


def _values(table, column):
    """The distinct non-empty values of a column, in order of appearance (none if there is no such column)."""
    return [] if column not in table.columns else list(dict.fromkeys(table[column].dropna().astype(str)))


def check_columns(table, *columns):
    for column in columns:
        if column is not None and column not in table.columns:
            raise BadInput(f"no column {column!r} in the table; columns: {', '.join(map(str, table.columns))}")


def group_columns(table, x, y, hue=None):
    """The columns whose values make a line: --hue first, then every hyperparameter that varies but X and the
    seeds (a column whose name ends in 'seed'), so only seeds are averaged over.

    The hyperparameters are the columns before the first metric, as collect orders them."""
    varying = [c for c in hyperparameters(table, y) if not is_seed(c)]
    return [c for c in dict.fromkeys(([hue] if hue else []) + varying) if c != x]


def hyperparameters(table, y=None):
    """The hyperparameter columns that vary, seeds included: those before the first metric (and Y), as
    collect orders them, but for the run's own (run_dir, name, status)."""
    params = []
    for column in table.columns:
        if column in METRIC_START or column == y or str(column).startswith(METRIC_PREFIXES):
            break
        params.append(column)
    return [c for c in params if c not in RUN and table[c].nunique(dropna=False) > 1]


def is_seed(column):
    return str(column).endswith("seed")


def plotted_rows(table, x, y, keys):
    """The rows with a numeric Y and an X: the group columns, X, Y and the seed columns that are not keys."""
    seeds = [c for c in table.columns if is_seed(c) and c not in keys and c != x]
    data = table[keys + [x, y] + seeds].copy()
    data[y] = pd.to_numeric(data[y], errors="coerce")
    data = data.dropna(subset=[y, x])
    if data.empty:
        raise BadInput(f"no row has both {x} and {y} (are the runs finished? collect shows their status)")
    return data


def aggregate(data, x, y, keys):
    """One row per (group, x): mean, std and n of y over the other rows (the seeds), and the band drawn."""
    out = data.groupby(keys + [x], sort=True, dropna=False)[y].agg(["mean", "std", "count"]).reset_index()
    out = out.rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    out["low"], out["high"] = out["mean"] - out["std"], out["mean"] + out["std"]
    if is_bounded(y, data[y]):
        out["low"], out["high"] = out["low"].clip(0, 1), out["high"].clip(0, 1)
    return out


def is_bounded(y, values):
    """A fraction (an accuracy, an F1 score: runkit.rundir.modes) given as one: its band stays within [0, 1]."""
    return modes.is_fraction(y) and bool(values.between(0, 1).all())


def averaged(data, agg, x, keys):
    """What each point is, in words: 'mean ± std over 2 seeds' only when no two rows of a point share their
    seed; else '... over 6 rows' (the epochs of each seed, say), so a label never calls other rows seeds."""
    low, high = int(agg["n"].min()), int(agg["n"].max())
    if high == 1:
        return "one row per point"
    count = str(high) if low == high else f"{low}-{high}"
    seeds = [c for c in data.columns if c not in keys + [x] and is_seed(c)]
    by_seed = bool(seeds) and not data.duplicated(subset=keys + [x] + seeds).any()
    return f"mean ± std over {count} {'seeds' if by_seed else 'rows'}"


def use_log_x(values):
    """Log scale when X is positive and spans two decades or more."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return bool(numbers.notna().all() and (numbers > 0).all() and numbers.max() / numbers.min() >= 100)


def groups(agg, keys):
    """[(label, frame)] per group, in order; one unlabeled group when nothing but X varies."""
    if not keys:
        return [("", agg)]
    return [(", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, values, strict=True)), frame)
            for values, frame in agg.groupby(keys, sort=True, dropna=False)]


def summary(agg, x, y, keys, maximize):
    """Text: for each group, the X with the best mean Y, its spread and how many runs it averages."""
    rows = []
    for _label, frame in groups(agg, keys):
        at = frame["mean"].idxmax() if maximize else frame["mean"].idxmin()
        rows.append([_fmt(frame[k][at]) for k in keys] +  # column by column: a row would upcast ints
                    [_fmt(frame[x][at]), f"{frame['mean'][at]:.4g}", f"{frame['std'][at]:.2g}", str(frame["n"][at])])
    header = [str(k) for k in keys] + [f"best {x}", f"{y} (mean)", "std", "n"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in [header] + rows)


def points(agg):
    """The points drawn, as CSV: the group's columns, X, mean, std, n, and the band (low, high)."""
    return agg.to_csv(index=False, lineterminator="\n")


def draw_png(agg, x, y, keys, path, logx, what):
    """Mean Y against X per group, with a band of one standard deviation over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, frame in groups(agg, keys):
        frame = frame.sort_values(x)
        line, = ax.plot(frame[x], frame["mean"], marker="o", label=label or None)
        if (frame["n"] > 1).any():
            ax.fill_between(frame[x], frame["low"], frame["high"], color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y if what == "one row per point" else f"{y} ({what})")
    if keys:
        ax.legend(title=None, fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def series(agg, x, keys):
    """([(label, xs, means)], names of x or None) for the text renderer; words on X become positions 0, 1, ..."""
    names = None if pd.api.types.is_numeric_dtype(agg[x]) else sorted(agg[x].unique(), key=str)
    out = []
    for label, frame in groups(agg, keys):
        frame = frame.sort_values(x)
        xs = [float(v) for v in frame[x]] if names is None else [float(names.index(v)) for v in frame[x]]
        out.append((label, xs, [float(v) for v in frame["mean"]]))
    return out, names and [str(n) for n in names]


def _fmt(value):
    """As in run names (1.0, 0.001), shortened only when long."""
    value = value.item() if hasattr(value, "item") else value  # a NumPy number from pandas: its Python twin
    if isinstance(value, float):
        return repr(value) if len(repr(value)) <= 8 else f"{value:.6g}"
    return str(value)
