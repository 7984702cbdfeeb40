"""plot's work: read a collect table, average Y over seeds for each (hue, X), draw it, say where the best is.

Uses pandas and matplotlib (plot is not a light tool); nothing else in runkit imports this module.
"""
import io
import os

import pandas as pd

from runkit.cli import UsageError


def read_table(text):
    """A collect table (CSV, or JSON lines when the first character is '{') as a DataFrame."""
    if not text.strip():
        raise UsageError("stdin is empty: pipe a table in (collect $RESULTS_DIR/tune_lr | plot lr)")
    try:
        if text.lstrip().startswith("{"):
            return pd.read_json(io.StringIO(text), lines=True)
        return pd.read_csv(io.StringIO(text))
    except ValueError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"stdin is not a collect table (CSV or JSON lines): {first}") from None


def default_y(table):
    return "best_val_acc" if "best_val_acc" in table.columns or "epoch" not in table.columns else "val_acc"


def check_columns(table, *columns):
    for column in columns:
        if column is not None and column not in table.columns:
            raise UsageError(f"no column {column!r} in the table; columns: {', '.join(map(str, table.columns))}")


def aggregate(table, x, y, hue=None):
    """One row per (hue, x): mean, std and count of y over the other rows (the seeds)."""
    keys = [hue, x] if hue else [x]
    data = table[keys + [y]].copy()
    data[y] = pd.to_numeric(data[y], errors="coerce")
    data = data.dropna(subset=[y, x])
    if data.empty:
        raise UsageError(f"no row has both {x} and {y} (are the runs finished? collect shows their status)")
    out = data.groupby(keys, sort=True)[y].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def use_log_x(values):
    """Log scale when X is positive and spans two decades or more."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return bool(numbers.notna().all() and (numbers > 0).all() and numbers.max() / numbers.min() >= 100)


def groups(agg, hue):
    """[(label, frame)] per hue value, in order; one unlabeled group without a hue."""
    if not hue:
        return [("", agg)]
    return [(f"{hue}={_fmt(value)}", frame) for value, frame in agg.groupby(hue, sort=True)]


def summary(agg, x, y, hue, maximize):
    """Text: for each group, the X with the best mean Y, its spread and how many runs it averages."""
    rows = []
    for label, frame in groups(agg, hue):
        at = frame["mean"].idxmax() if maximize else frame["mean"].idxmin()
        rows.append(([label.partition("=")[2]] if hue else []) +  # column by column: a row would upcast ints
                    [_fmt(frame[x][at]), f"{frame['mean'][at]:.4g}", f"{frame['std'][at]:.2g}",
                     str(frame["count"][at])])
    header = ([hue] if hue else []) + [f"best {x}", f"{y} (mean)", "std", "n"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in [header] + rows)


def draw_png(agg, x, y, hue, path, logx):
    """Mean Y against X per group, with a band of one standard deviation over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, frame in groups(agg, hue):
        frame = frame.sort_values(x)
        line, = ax.plot(frame[x], frame["mean"], marker="o", label=label or None)
        if (frame["count"] > 1).any():
            ax.fill_between(frame[x], frame["mean"] - frame["std"], frame["mean"] + frame["std"],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    n = int(agg["count"].max())
    ax.set_ylabel(f"{y} (mean ± std over {n} seeds)" if n > 1 else y)
    if hue:
        ax.legend(title=None, fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def series(agg, x, hue):
    """([(label, xs, means)], names of x or None) for the text renderer; words on X become positions 0, 1, ..."""
    names = None if pd.api.types.is_numeric_dtype(agg[x]) else sorted(agg[x].unique(), key=str)
    out = []
    for label, frame in groups(agg, hue):
        frame = frame.sort_values(x)
        xs = [float(v) for v in frame[x]] if names is None else [float(names.index(v)) for v in frame[x]]
        out.append((label, xs, [float(v) for v in frame["mean"]]))
    return out, names and [str(n) for n in names]


def _fmt(value):
    """As in run names (1.0, 0.001), shortened only when long."""
    if isinstance(value, float):
        return repr(value) if len(repr(value)) <= 8 else f"{value:.6g}"
    return str(value)

