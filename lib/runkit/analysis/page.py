"""report's work: one self-contained HTML page of a sweep, from a collect table and the runs' folders.

The page holds its data as JSON and draws everything in the browser: plotly.js (plotly's own bundled copy)
for the learning curves, the parallel coordinates and the metric-against-hyperparameter panels, DataTables
(the copy itables ships) for the sortable, filterable run table; page.js is only the glue between them and
the two-run diff. Both libraries are inlined, so the file opens from file:// with no network.
Lines are grouped as plot groups them (runkit.analysis.plotting): one per configuration, seeds averaged,
with a band of one standard deviation. Run folders are read only through runkit.analysis.table and
runkit.rundir.runs. Uses pandas (through plotting); report imports this module only after parsing its arguments.
"""
import html
import itertools
import json
import math
import os
from importlib import resources

import pandas as pd

from runkit.analysis import plotting, table
from runkit.errors import BadInput
from runkit.rundir import runs

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")  # plotly's default colorway: a band takes its line's colour
MAX_LEGEND = 30  # more lines than this: no legend (hovering names each line)
CONFIG = {"displaylogo": False, "responsive": True}
SKIP_CURVES = ("epoch", "step", "time")
BOOKKEEPING = ("epoch", "step", "time", "lr")  # best_step, final_time...: history's columns, not metrics


def from_dirs(dirs):
    """The run table (a DataFrame, as collect prints it) of the run folders under dirs."""
    run_dirs = list(dict.fromkeys(d for root in dirs for d in runs.find([os.path.abspath(root)])))
    if not run_dirs:
        raise BadInput(f"no run folders in {', '.join(dirs)} (a run folder holds bindings.json, meta.json, "
                         "HEARTBEAT, FINISHED or .lock)")
    columns, rows = table.build(run_dirs)
    return pd.DataFrame(rows, columns=columns)


def render(runs_table, title, refresh=None):
    """The page's HTML text; BadInput for a table it cannot show (no rows, no metrics, no run folders)."""
    if runs_table.empty:
        raise BadInput("the table has no rows: collect a folder that holds runs (collect $RESULTS_DIR/tune_lr)")
    if "run_dir" not in runs_table.columns:
        raise BadInput("the table has no run_dir column: pipe in a table collect wrote")
    metrics = [c for c in runs_table.columns if str(c).startswith(plotting.METRIC_PREFIXES)]
    if not metrics:
        raise BadInput("the table has no metrics (no best_, final_ or test_ column): no run has finished "
                         "yet; collect shows their status")
    run_dirs = [d for d in dict.fromkeys(runs_table["run_dir"].dropna()) if os.path.isdir(d)]
    if not run_dirs:
        raise BadInput("none of the table's run_dir folders exists here: run report where the runs are")
    try:
        y = plotting.choose_y(runs_table)
    except BadInput:  # no single monitored metric: the first metric stands in
        y = metrics[0]
    goal, _why = plotting.goal(runs_table, y)
    data = {"title": title, "y": y, "goal": goal, **_table(runs_table, y, metrics, goal),
            **_bindings(runs_table, run_dirs), "parcoords": _parcoords(runs_table, y, goal),
            "panels": _panels(runs_table, y), **_curves(run_dirs, runs_table), "config": CONFIG}
    return _html(data, title, refresh)


def write(path, text):
    """Atomically: an open page that reloads never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    runs.write_atomic(path, text)


# ---- the parts of the page's data ---------------------------------------------------------------

def _table(runs_table, y, metrics, goal):
    """The run table: name, status (a failed run's with its reason), the hyperparameters that differ (and
    the source the runs started from, where they did), the metrics (Y first), the run's folder; sorted by Y, best first."""
    params = plotting.hyperparameters(runs_table, y)
    final = "final_" + y.removeprefix("best_")
    shown = [m for m in dict.fromkeys([y, "best_epoch", final] + metrics) if m in metrics and not (
        m != "best_epoch" and m.partition("_")[2] in BOOKKEEPING)]
    if table.SOURCE in runs_table.columns and table.SOURCE not in params:
        params = params + [table.SOURCE]  # the run each started from (train --from), even where all share it
    columns = ["name", "status"] + params + shown + ["run_dir"]
    rows = []
    for record in runs_table.to_dict("records"):
        status = str(record.get("status") or "")
        if _present(record.get("error")):
            status = f"{status}: {record['error']}"
        rows.append([_cell(record.get("name")), status] + [_cell(record.get(c)) for c in params + shown] +
                    [_cell(record.get("run_dir"))])
    return {"columns": columns, "rows": rows, "order": [[2 + len(params), "desc" if goal == "max" else "asc"]]}


def _bindings(runs_table, run_dirs):
    """Every run's bindings for the diff: those all runs share once (common), the rest per run."""
    found = set(run_dirs)
    names, configs = [], []
    for record in runs_table.to_dict("records"):
        names.append(str(record.get("name")))
        run_dir = record.get("run_dir")
        config = runs.read_json(run_dir, runs.BINDINGS, {}) if run_dir in found else {}
        configs.append(config if isinstance(config, dict) else {})
    keys = {k for c in configs for k in c}
    common = {k: configs[0][k] for k in sorted(keys)
              if all(k in c for c in configs) and len({json.dumps(c[k], sort_keys=True) for c in configs}) == 1}
    return {"names": names, "common": common,
            "bindings": [{k: v for k, v in c.items() if k not in common} for c in configs]}


def _curves(run_dirs, runs_table):
    """{metric: figure} of every metric the runs logged, by epoch, one line per configuration."""
    columns, rows = table.build(run_dirs, history=True)
    history = pd.DataFrame(rows, columns=columns)
    start = columns.index("epoch") if "epoch" in columns else len(columns)
    curves = {}
    for metric in columns[start:]:
        if metric in SKIP_CURVES:
            continue
        figure = _lines_figure(history, "epoch", metric, f"{metric} by epoch", logx=False)
        if figure:
            curves[metric] = figure
    monitors = [m for m in dict.fromkeys(runs_table.get("monitor", pd.Series(dtype=object)).dropna()) if m in curves]
    return {"curves": curves, "curve": monitors[0] if monitors else next(iter(curves), None)}


def _panels(runs_table, y):
    """Y against each hyperparameter that varies (not the seeds), one line per value of the others."""
    panels = []
    for x in plotting.group_columns(runs_table, None, y):
        numbers = pd.to_numeric(runs_table[x], errors="coerce")
        figure = _lines_figure(runs_table, x, y, f"{y} against {x}",
                               logx=numbers.notna().all() and plotting.use_log_x(numbers))
        if figure:
            panels.append(figure)
    return panels


def _lines_figure(frame, x, y, title, logx):
    """A plotly figure of mean Y against X per group (plotting's groups), with a band over the seeds; None
    when no row has both X and Y."""
    keys = plotting.group_columns(frame, x, y)
    try:
        data = plotting.plotted_rows(frame, x, y, keys)
    except BadInput:
        return None
    agg = plotting.aggregate(data, x, y, keys)
    what = plotting.averaged(data, agg, x, keys)
    groups = plotting.groups(agg, keys)
    lines, bands = [], {}
    legend = 1 < len(groups) <= MAX_LEGEND
    for number, (label, part) in enumerate(groups):
        part = part.sort_values(x)
        color, xs = COLORS[number % len(COLORS)], _xs(part[x])
        if (part["n"] > 1).any():  # with a legend, a band per line (its legend entry hides both); else per colour
            band = bands.setdefault(label if legend else color, _band(color, label if legend else None))
            _outline(band, _cell_list(part[x]), _numbers(part["high"]), _numbers(part["low"]))
        lines.append({"type": "scatter", "mode": "lines+markers" if len(part) < 20 else "lines", "name": label or y,
                      "legendgroup": label, "line": {"color": color, "width": 1.5}, "marker": {"size": 5},
                      "y": _numbers(part["mean"]), **xs})
    ylabel = y if what == "one row per point" else f"{y} ({what})"
    layout = {"title": {"text": title}, "xaxis": {"title": {"text": x}, "type": "log" if logx else "-"},
              "yaxis": {"title": {"text": ylabel}}, "showlegend": legend,
              "margin": {"t": 40, "r": 10}, "height": 360, "hovermode": "closest"}
    return {"data": list(bands.values()) + lines, "layout": layout}


def _band(color, label):
    """One filled trace for the bands of one line or of every line of a colour: at 250 configurations, a
    trace per band edge made the curves three times as many SVG traces as lines (SVG's cost is per trace)."""
    return {"type": "scatter", "mode": "lines", "fill": "toself", "fillcolor": _transparent(color),
            "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, "legendgroup": label, "x": [], "y": []}


def _outline(band, xs, high, low):
    """Add one band to a fill trace: along the top, back along the bottom; a null closes it off from the next
    (plotly fills each gap-separated part of a toself trace as its own shape)."""
    if band["x"]:
        band["x"].append(None)
        band["y"].append(None)
    band["x"] += xs + xs[::-1]
    band["y"] += high + low[::-1]


def _parcoords(runs_table, y, goal):
    """Parallel coordinates: an axis per hyperparameter that varies (not the seeds; log10 where plot would
    use a log scale, words as ticks), then Y, each run a line coloured by Y; None when only seeds vary."""
    params = plotting.group_columns(runs_table, None, y)
    scores = pd.to_numeric(runs_table[y], errors="coerce")
    rows = runs_table[scores.notna()]
    if not params or rows.empty:
        return None
    dimensions = [_dimension(rows[p], str(p)) for p in params]
    values = _numbers(scores[scores.notna()])
    dimensions.append({"label": y, "values": values})
    line = {"color": values, "colorscale": "Viridis", "showscale": True, "reversescale": goal == "min"}
    return {"data": [{"type": "parcoords", "dimensions": dimensions, "line": line}],
            "layout": {"height": 420, "margin": {"l": 60, "r": 60, "t": 50, "b": 30}}}


def _dimension(column, label):
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        if plotting.use_log_x(numbers):
            return {"label": f"log10({label})", "values": _numbers(numbers.map(math.log10))}
        return {"label": label, "values": _numbers(numbers)}
    words = sorted({str(v) for v in column}, key=str)
    return {"label": label, "values": [words.index(str(v)) for v in column],
            "tickvals": list(range(len(words))), "ticktext": words}


# ---- values as JSON -----------------------------------------------------------------------------

def _xs(values):
    """x0 and dx for evenly spaced integers (the epochs: a sixth of the page's size at 1,000 runs), else x."""
    xs = [v.item() if hasattr(v, "item") else v for v in values]
    if len(xs) > 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in xs) and \
            all(b - a == xs[1] - xs[0] for a, b in itertools.pairwise(xs)):
        return {"x0": xs[0], "dx": xs[1] - xs[0]}
    return {"x": _cell_list(xs)}


def _cell_list(values):
    return [_cell(v) for v in values]


def _numbers(values):
    """Floats to 5 significant digits, NaN as null: what a plot shows, in a third of the characters."""
    return [None if v is None or not math.isfinite(v) else float(f"{v:.5g}") for v in map(float, values)]


def _cell(value):
    value = value.item() if hasattr(value, "item") else value
    if not _present(value):
        return None
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value if isinstance(value, (int, str, bool)) else json.dumps(value) if isinstance(value, (list, dict)) \
        else str(value)


def _present(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _transparent(color, alpha=0.2):
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---- the file -----------------------------------------------------------------------------------

def _asset(package, name):
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def _html(data, title, refresh):
    plotly_js = _asset("plotly", "package_data/plotly.min.js").replace("</script", "<\\/script")
    datatables = _asset("itables", "html/dt_bundle.js")
    if "</script" in datatables:  # inlined as text: it cannot be escaped, so it must not occur
        raise RuntimeError("itables' dt_bundle.js holds </script: it cannot be inlined")
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    reload = (f'<meta http-equiv="refresh" content="{refresh:g}">' if refresh else "")
    watching = (f"<p class=\"watch\">report --watch rewrites this page; it reloads every {refresh:g} s.</p>"
                if refresh else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{reload}
<title>{html.escape(title)}</title>
<style>{_asset("itables", "html/dt_bundle.css")}</style>
<style>{_asset("runkit.analysis", "page.css")}</style>
<script>{plotly_js}</script>
</head><body>
<h1>{html.escape(title)}</h1>{watching}
<p id="summary"></p>
<h2>Runs</h2>
<table id="runs" class="display compact nowrap"></table>
<h2>Learning curves</h2>
<label>metric <select id="curve-metric"></select></label>
<div id="curves" class="plot"></div>
<h2>Hyperparameters against <span class="y"></span></h2>
<div id="parcoords" class="plot"></div>
<div id="panels"></div>
<h2>Two runs' bindings side by side</h2>
<label>run <select id="diff-a"></select></label> <label>against <select id="diff-b"></select></label>
<label><input type="checkbox" id="diff-only" checked> only the bindings that differ</label>
<table id="diff"></table>
<div id="ready"></div>
<script type="application/json" id="report-data">{payload}</script>
<script type="text/plain" id="datatables">{datatables}</script>
<script>{_asset("runkit.analysis", "page.js")}</script>
</body></html>
"""
