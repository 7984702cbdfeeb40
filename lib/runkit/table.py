"""The results table: one row per run (or per epoch of each run), read from run folders through runs.py.

Columns, always in this order: run_dir, name, status, the varying hyperparameters (by the shortest
unambiguous suffix of their binding, or full names), the metrics, error. The standard metric columns are
always there, filled or empty, so a script can rely on them.
"""
import csv
import json
import os
import sys

from runkit import bindings, runs

FIRST = ["run_dir", "name", "status"]
LAST = ["error"]
BEST = ["val_acc", "val_loss", "epoch"]  # what metrics.json's "best" holds (docs/run-folder.md)
FORMATS = ("csv", "jsonl", "md")


def read_run(run_dir, history=False):
    """(row without hyperparameters, bindings, history rows); unreadable files give status 'corrupt'."""
    row = {"run_dir": run_dir, "name": os.path.basename(run_dir), "status": runs.status(run_dir), "error": None}
    config, summary, epochs = {}, {}, []
    try:
        config = runs.read_json(run_dir, runs.BINDINGS, {})
        if history:
            epochs = runs.read_history(run_dir)
        else:
            summary = runs.read_json(run_dir, runs.METRICS, {})
            if not isinstance(summary, dict):
                raise runs.CorruptRun(f"{runs.path(run_dir, runs.METRICS)} is not a JSON object")
        if not isinstance(config, dict):
            raise runs.CorruptRun(f"{runs.path(run_dir, runs.BINDINGS)} is not a JSON object")
    except runs.CorruptRun as e:
        row.update(status="corrupt", error=str(e))
        config, summary, epochs = config if isinstance(config, dict) else {}, {}, []
    for part in ("best", "final"):
        values = summary.get(part)
        for key, value in (values.items() if isinstance(values, dict) else ()):
            row[f"{part}_{key}"] = value
    return row, config, epochs


def build(run_dirs, history=False, full_names=False):
    """(columns, rows) for the runs: one row per run, or one per epoch per run with history=True."""
    read = [read_run(d, history) for d in run_dirs]
    varying = _varying([config for _row, config, _epochs in read])
    standard = runs.HISTORY_COLUMNS if history else [f"best_{k}" for k in BEST] + [f"final_{k}" for k in runs.HISTORY_COLUMNS]
    short = bindings.short_names(varying)
    # a short name that is also a metric column (lr in --history) keeps its full name
    names = {k: k if full_names or short[k] in set(FIRST + LAST + standard) else short[k] for k in varying}

    rows = []
    for row, config, epochs in read:
        params = {names[k]: config.get(k) for k in varying}
        base = {**{c: row[c] for c in FIRST}, **params}
        if history:
            rows += [{**base, **epoch, "error": row["error"]} for epoch in epochs] or [{**base, "error": row["error"]}]
        else:
            rows.append({**base, **{k: v for k, v in row.items() if k not in base}})
    known = set(FIRST) | set(names.values()) | set(standard) | set(LAST)
    extra = sorted({k for r in rows for k in r} - known, key=_metric_order)
    return FIRST + list(names.values()) + standard + extra + LAST, rows


def _varying(configs):
    """Binding names whose values differ between runs (a binding missing from some runs varies too)."""
    keys = sorted({k for c in configs for k in c})
    missing = "\0missing"
    return [k for k in keys if len({_comparable(c.get(k, missing)) for c in configs}) > 1]


def _comparable(value):
    """A hashable stand-in equal for equal JSON values only (1, 1.0 and True differ; lists by their JSON)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return type(value), repr(value)  # repr: NaN equals NaN


def _metric_order(column):
    return (not column.startswith("best_"), column)


def write(columns, rows, fmt, stream=None):
    stream = stream or sys.stdout
    if fmt == "jsonl":
        for row in rows:
            stream.write(json.dumps({c: row.get(c) for c in columns}, separators=(",", ":")) + "\n")
    elif fmt == "md":
        stream.write("| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n")
        for row in rows:
            stream.write("| " + " | ".join(_text(row.get(c)).replace("|", "\\|") for c in columns) + " |\n")
    else:
        out = csv.writer(stream, lineterminator="\n")
        out.writerow(columns)
        # csv writes None as empty and a float by its repr already: only lists and dicts need converting
        out.writerows([json.dumps(v) if isinstance(v, (list, tuple, dict)) else v for v in map(row.get, columns)]
                      for row in rows)


def _text(value):
    """A cell: empty for None, repr for floats (no precision lost), JSON for lists and dicts."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)
