"""The results table: one row per run (or per epoch of each run), read from run folders through runs.py.

Columns, in this order: run_dir, name, status, the varying hyperparameters (by the shortest unambiguous
suffix of their binding, or full names), from (only where some run started from another's checkpoint:
meta.json's source, `train --from`), monitor and mode (what each run's metrics.json says it optimized),
the metrics, resume (only where some run's data resumes approximately: meta.json's data_resume), error. The metrics are whatever the runs logged, the union over the runs: in a run table
best_<monitor>, best_epoch, then the other best_, final_ and test_ columns sorted; in a history table epoch,
step, the logged metrics sorted, lr, time. No metric name is built in: plot finds best_<monitor> through the
monitor column.
"""
import csv
import io
import json
import math
import os
import sys

from runkit import cli, errors
from runkit.rundir import runs
from runkit.sweeps import bindings

FIRST = ["run_dir", "name", "status"]
OBJECTIVE = ["monitor", "mode"]
LAST = ["error"]
PARTS = ("best", "final", "test")  # the parts of metrics.json that become columns <part>_<metric>
RESUME = "resume"  # a column only where some run resumes its data approximately (an IterableDataset, say)
SOURCE = "from"  # a column only where some run started from another run's checkpoint (train --from)
FORMATS = ("csv", "jsonl", "md")


def read_run(run_dir, history=False):
    """(row without hyperparameters, bindings, history rows); unreadable files give status 'corrupt'."""
    row = {"run_dir": run_dir, "name": os.path.basename(run_dir), "status": runs.status(run_dir),
           "monitor": None, "mode": None, "error": None}
    config, summary, epochs = {}, {}, []
    try:
        meta = _json_object(run_dir, runs.META)
        row[RESUME], row[SOURCE] = _resume(meta), _source(meta)
        config = _json_object(run_dir, runs.BINDINGS)
        summary = _json_object(run_dir, runs.METRICS)
        if history:
            epochs = runs.read_history(run_dir)
        if row["status"] == "failed":
            row["error"] = _failure(run_dir)
    except runs.CorruptRun as e:
        row.update(status="corrupt", error=str(e))
        summary, epochs = {}, []  # the bindings, if they read well, still name the run's hyperparameters
    row.update(_objective(summary))
    if not history:
        row.update(_metrics(summary))
    return row, config, epochs


def _resume(meta):
    """'exact' or 'approximate' (meta.json's data_resume: how the training loader resumes; world_resume: a
    resume on another number of processes), None if unsaid."""
    said = meta.get("data_resume")
    if meta.get("world_resume"):  # resumed on another number of processes (runkit.training.world)
        return "approximate"
    return None if not isinstance(said, dict) else "exact" if said.get("exact") else "approximate"


def _source(meta):
    """The checkpoint the run started from (meta.json's source.checkpoint), None if it started afresh."""
    said = meta.get("source")
    return said.get("checkpoint") if isinstance(said, dict) else None


def _json_object(run_dir, name):
    """A JSON file of the run that must hold an object; {} when it does not exist yet."""
    value = runs.read_json(run_dir, name, {})
    if not isinstance(value, dict):
        raise runs.CorruptRun(f"{runs.path(run_dir, name)} is not a JSON object")
    return value


def _failure(run_dir):
    """Why a failed run failed, from error.json: 'ValueError: lr must be positive'."""
    error = _json_object(run_dir, runs.ERROR)  # {} if a new attempt removed it since status() looked
    lines = str(error.get("error") or "").strip().splitlines()
    return ": ".join(str(part) for part in (error.get("type"), lines[0] if lines else None) if part) or None


def _objective(summary):
    """{"monitor", "mode"} from metrics.json."""
    return {"monitor": summary["monitor"], "mode": summary.get("mode")} if summary.get("monitor") is not None else {}


def _metrics(summary):
    """{<part>_<metric>: value} for best, final and test; a test metric already named test_... keeps its name."""
    out = {}
    for part in PARTS:
        values = summary.get(part)
        for key, value in (values.items() if isinstance(values, dict) else ()):
            out[key if part == "test" and key.startswith("test_") else f"{part}_{key}"] = value
    return out


def build(run_dirs, history=False, full_names=False):
    """(columns, rows) for the runs: one row per run, or one per epoch per run with history=True."""
    read = [read_run(d, history) for d in run_dirs]
    varying = _varying([config for _row, config, _epochs in read])
    fixed = FIRST + OBJECTIVE + LAST
    metrics = _history_columns(read) if history else _run_columns(read)
    short = bindings.short_names(varying)
    # a short name that is also another column (lr in --history) keeps its full name
    taken = set(fixed + metrics)
    names = {k: k if full_names or short[k] in taken else short[k] for k in varying}

    said = [RESUME] if any(row.get(RESUME) == "approximate" for row, _config, _epochs in read) else []
    sourced = [SOURCE] if any(row.get(SOURCE) for row, _config, _epochs in read) else []
    rows = []
    for row, config, epochs in read:
        if not said:
            row.pop(RESUME, None)
        source = row.pop(SOURCE, None)
        base = {**{c: row[c] for c in FIRST}, **{names[k]: config.get(k) for k in varying},
                **({SOURCE: source} if sourced else {})}
        if history:
            rows += [{**base, **row, **epoch} for epoch in epochs] or [{**base, **row}]
        else:
            rows.append({**base, **row})
    return FIRST + list(names.values()) + sourced + OBJECTIVE + metrics + said + LAST, rows


def _run_columns(read):
    """best_<monitor> (each monitor the runs name), best_epoch, then the other metric columns sorted."""
    present = {k for row, _config, _epochs in read for k in row} - set(FIRST + OBJECTIVE + LAST + [RESUME, SOURCE])
    monitors = list(dict.fromkeys(row["monitor"] for row, _config, _epochs in read if row["monitor"]))
    first = [c for c in [f"best_{m}" for m in monitors] + ["best_epoch"] if c in present]
    order = {part: n for n, part in enumerate(PARTS)}
    rest = sorted(present - set(first), key=lambda c: (order.get(c.partition("_")[0], len(PARTS)), c))
    return first + rest


def _history_columns(read):
    """epoch, step, the metrics any run logged (sorted), lr, time."""
    logged = {k for _row, _config, epochs in read for epoch in epochs for k in epoch}
    fixed = runs.HISTORY_FIRST + runs.HISTORY_LAST
    return [*runs.HISTORY_FIRST, *sorted(logged - set(fixed)), *runs.HISTORY_LAST]


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


def write(columns, rows, fmt, stream=None):
    stream = stream or sys.stdout
    if fmt == "jsonl":
        for row in rows:
            stream.write(cli.json_line({c: row.get(c) for c in columns}) + "\n")
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


# ---- reading a table back: the one reader of every consumer (halving, propose, plot, report) ----------

def read(stream, source="stdin"):
    """The rows of a collect table on a stream, as dicts; [] for an empty stream (see parse)."""
    return parse(stream.read(), source)[1]


def parse(text, source="stdin", need_run_dir=True):
    """(columns, rows, text_cells) of a collect table: CSV, or JSON lines when the first character is '{';
    ([], [], False) for blank text. CSV cells are text ('' is None; text_cells is True): number() reads the
    metrics, plotting types whole columns. JSON values keep their types. A CSV table names a run_dir column
    unless need_run_dir is False (plot draws any table); text that is neither is BadInput, in one line."""
    if not text.strip():
        return [], [], False
    if text.lstrip().startswith("{"):
        try:
            rows = list(cli.read_jsonl(io.StringIO(text), source))
        except errors.BadInput as e:
            raise _not_a_table(source, e) from None
        return list(dict.fromkeys(k for row in rows for k in row)), rows, False
    reader = csv.DictReader(io.StringIO(text))
    try:
        columns, rows = reader.fieldnames or [], []
        for row in reader:
            if None in row:  # more cells than the header names
                raise _not_a_table(source, f"line {reader.line_num} has more cells than its header")
            rows.append({k: (None if v == "" else v) for k, v in row.items()})
    except csv.Error as e:
        raise _not_a_table(source, f"line {reader.line_num}: {e}") from None
    if need_run_dir and "run_dir" not in columns:
        raise _not_a_table(source, "no run_dir column")
    return columns, rows, True


def _not_a_table(source, why):
    return errors.BadInput(f"{source} is not a collect table (CSV or JSON lines): {why}")


def run_key(run_dir):
    """A table's run_dir as the key that finds the run: absolute and normalized; None if it is not text."""
    return os.path.normpath(os.path.abspath(run_dir)) if isinstance(run_dir, str) else None


def number(value):
    """A cell as a finite float, or None (empty, null, NaN, infinity, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
