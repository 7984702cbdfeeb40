"""The run folder: the one implementation of the format documented in docs/run-folder.md.

Every tool writes and reads run folders through this module only. It imports nothing heavy
(pandas only inside load_H), so light tools can use it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from runkit import cli
from runkit.errors import BadInput
from runkit.rundir import lock
from runkit.rundir.lock import Folder
from runkit.timestamps import now_iso

# The files of a run folder (docs/run-folder.md says what each holds).
CONFIG = "config.gin"            # the operative gin config, defaults included
BINDINGS = "bindings.json"       # every binding from the config files and -b, as JSON: what load_C returns
COMMAND = "command.txt"          # the command line that made the run, shell-quoted
META = "meta.json"               # git, host, versions, times, SLURM ids
HISTORY = "history.csv"          # one row per epoch: epoch, step, every metric the task logs, lr, time
METRICS = "metrics.json"         # {"monitor", "mode", "final": {...}, "best": {...}[, "test": {...}]}
CHECKPOINTS = "checkpoints"      # last.ckpt and best.ckpt, written atomically
TENSORBOARD = "tb"               # TensorBoard event files
LOG = "train.log"                # what train printed on stderr, across all attempts
STDOUT, STDERR = "stdout.log", "stderr.log"  # the raw process output when a runner (runbatch, SLURM) started it
HEARTBEAT = "HEARTBEAT"          # touched every HEARTBEAT_EVERY seconds while the run is alive
ERROR = "error.json"             # why the last attempt failed; removed when a new attempt starts
FINISHED = "FINISHED"            # written last: the run is complete
STOPPED = "STOPPED"              # a signal stopped the run after a checkpoint; removed when an attempt starts
SPEC = "spec.json"               # the run spec runbatch last started the run from (docs/spec.md)
LOCK = lock.FILE                 # flock-ed by the process that owns the run; holds its host and pid
SLURM = "slurm.json"             # runbatch --slurm: the batch and array task of the run, and each attempt
SLURM_LOG = "slurm-%A_%a.log"    # runbatch --slurm: the task's raw output; SLURM puts in job and task ids
WANDB = "wandb"                  # the W&B logger's folder (its offline runs, runkit's journal of what it logged)
WANDB_ID = "runkit-run-id"       # in wandb/: the W&B run id every attempt logs to; marks the folder as runkit's

HISTORY_FIRST, HISTORY_LAST = ("epoch", "step"), ("lr", "time")  # the metrics go between, as first logged
HEARTBEAT_EVERY = 10.0
HEARTBEAT_STALE = 60.0
_UMASK = os.umask(0)
os.umask(_UMASK)
STATUSES = ("finished", "running", "stopped", "failed", "dead", "incomplete", "corrupt")


class CorruptRun(Exception):
    """A file of the run folder is half-written or unreadable; the message names it."""


def path(run_dir: Folder, name: str) -> str:
    return os.path.join(run_dir, name)


# ---- writing ---------------------------------------------------------------------------------

def write_atomic(file_path: Folder, data: str | bytes) -> None:
    """Write bytes or text to a temporary name in the same folder, fsync, then rename over the target.

    A kill at any moment leaves either the old file or the new one, never half of one.
    """
    folder = os.path.dirname(file_path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(file_path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(run_dir: Folder, name: str, obj: Any) -> None:
    """Write a JSON file of the run atomically; NaN and infinity become null (strict parsers reject them)."""
    write_atomic(path(run_dir, name), json.dumps(cli.plain(obj), indent=2, sort_keys=True, default=str,
                                                 allow_nan=False) + "\n")


def history_columns(rows: list[dict]) -> list[str]:
    """epoch, step, then each metric in the order it first appears, then lr, time: a metric first logged
    later adds a column (empty in earlier rows) and the columns already there keep their places."""
    seen = dict.fromkeys(HISTORY_FIRST)
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if k not in HISTORY_LAST))
    return list(seen) + list(HISTORY_LAST)


def write_history(run_dir: Folder, rows: list[dict]) -> None:
    """Rewrite history.csv whole from rows (dicts), atomically, through the csv module (quoted as needed)."""
    columns = history_columns(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_atomic(path(run_dir, HISTORY), out.getvalue())


def _cell(value: Any) -> str:
    value = cli.plain(value)
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def touch(run_dir: Folder, name: str) -> None:
    with open(path(run_dir, name), "a"):
        pass
    os.utime(path(run_dir, name))


def mark_finished(run_dir: Folder) -> None:
    write_atomic(path(run_dir, FINISHED), now_iso() + "\n")


def mark_failed(run_dir: Folder, error: str, kind: str, traceback: str | None = None) -> None:
    """Record why the last attempt failed (error.json), unless the job recorded it itself; `traceback`: where
    it failed, when the job that failed is this process (train)."""
    if not os.path.exists(path(run_dir, ERROR)):
        write_json(run_dir, ERROR, {"error": error, "type": kind, "time": now_iso(),
                                    **({"traceback": traceback} if traceback is not None else {})})


def record_slurm_submission(run_dir: Folder, batch_dir: str, task: int) -> None:
    """The run is task `task` of the job array in batch_dir (runbatch --slurm); its attempts follow."""
    write_json(run_dir, SLURM, {"batch_dir": batch_dir, "task": task, "attempts": []})


def record_slurm_attempt(run_dir: Folder, attempt: dict) -> None:
    """Add an attempt (SLURM ids, host, start, ...) to slurm.json, or update the one with the same start."""
    record = read_slurm(run_dir) or {"attempts": []}
    others = [a for a in record.get("attempts", []) if a.get("start") != attempt["start"]]
    record["attempts"] = others + [attempt]
    write_json(run_dir, SLURM, record)


def alive(run_dir: Folder, now: float | None = None) -> bool:
    """True if a live process owns the run.

    On the host that took the lock, the lock tells the truth (a `kill -9` frees it at once); for a run
    whose lock was taken on another machine, where locks may not be shared, a fresh HEARTBEAT does, as it
    does on a file system without locks.
    """
    host = lock.host(run_dir)
    if host is None or host == lock.HOST:
        try:
            return lock.is_locked(run_dir)
        except lock.NoLocks:
            pass  # no locks here (runbatch refuses such a file system; collect still reads it): the heartbeat
    try:
        return (now or time.time()) - os.stat(path(run_dir, HEARTBEAT)).st_mtime < HEARTBEAT_STALE
    except FileNotFoundError:
        return False


# ---- reading ---------------------------------------------------------------------------------

def status(run_dir: Folder, now: float | None = None) -> str:
    """finished | stopped | failed | running | dead | incomplete, from the files and the lock (docs/run-folder.md)."""
    if os.path.exists(path(run_dir, FINISHED)):
        return "finished"
    if os.path.exists(path(run_dir, STOPPED)):
        return "stopped"
    if os.path.exists(path(run_dir, ERROR)):
        return "failed"
    if alive(run_dir, now):
        return "running"
    return "dead" if os.path.exists(path(run_dir, HEARTBEAT)) else "incomplete"


def epochs_trained(run_dir: Folder) -> int | None:
    """The epochs history.csv holds, less those a callback added for an extra pass (meta.json's epochs_added:
    SWA's BatchNorm epoch); None before the first epoch's row."""
    rows = read_history(run_dir)
    return rows[-1]["epoch"] - ((read_json(run_dir, META) or {}).get("epochs_added") or 0) if rows else None


def done(run_dir: Folder, n_epochs: int) -> bool:
    """The "done" rule: the run finished as asked, with n_epochs epochs trained, or fewer where it stopped
    early (metrics.json's stopped_early: EarlyStopping); rerunning it does nothing."""
    trained = epochs_trained(run_dir)
    if status(run_dir) != "finished" or trained is None:
        return False
    return trained == n_epochs or bool((read_json(run_dir, METRICS) or {}).get("stopped_early", False))


def read_json(run_dir: Folder, name: str, default: Any = None) -> Any:
    """A JSON file of the run; `default` if it does not exist; CorruptRun if it cannot be parsed."""
    try:
        with open(path(run_dir, name), "rb") as f:  # bytes: json decodes UTF-8 itself, a little faster
            return json.loads(f.read())
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptRun(f"{path(run_dir, name)} is not valid JSON ({e})") from None


def read_slurm(run_dir: Folder) -> dict | None:
    """slurm.json: {"batch_dir", "task", "attempts": [...]}, or None for a run never submitted to SLURM."""
    return read_json(run_dir, SLURM)


def load_C(run_dir: Folder) -> dict:
    """The run's configuration: {binding name: value} for every binding, as in bindings.json."""
    config = read_json(run_dir, BINDINGS)
    if config is None:
        raise FileNotFoundError(f"{path(run_dir, BINDINGS)} does not exist: is {run_dir} a run folder?")
    return config


def read_history(run_dir: Folder) -> list[dict]:
    """history.csv as a list of dicts with typed values; CorruptRun on a malformed row."""
    try:
        with open(path(run_dir, HISTORY), newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return []
            rows = []
            for number, cells in enumerate(reader, 2):
                if len(cells) != len(header):
                    raise CorruptRun(f"{path(run_dir, HISTORY)} line {number} has {len(cells)} cells, "
                                     f"expected {len(header)}")
                rows.append({k: _number(v) for k, v in zip(header, cells, strict=True)})
            return rows
    except FileNotFoundError:
        return []


def _number(text: str) -> float | str | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def load_H(run_dir: Folder) -> Any:
    """The run's history as a pandas DataFrame, one row per epoch."""
    import pandas as pd
    rows = read_history(run_dir)
    return pd.DataFrame(rows, columns=history_columns(rows))


def is_run_dir(folder: Folder) -> bool:
    """A run folder is one that holds bindings.json, a heartbeat, a lock or a FINISHED marker."""
    return any(os.path.exists(path(folder, n)) for n in (BINDINGS, HEARTBEAT, FINISHED, LOCK, META, SLURM))


def find(roots: Iterable[Folder]) -> list[str]:
    """Every run folder at or under the given folders, sorted; does not descend into run folders."""
    found: list[str] = []
    for root in roots:
        _find(os.fspath(root), found)
    return sorted(found)


def _find(folder: str, found: list[str]) -> None:
    # One scandir per non-run folder and one stat per run folder: collect reads 10,000 runs in well under 1 s.
    if is_run_dir(folder):
        found.append(folder)
        return
    try:
        entries = list(os.scandir(folder))
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return
    for entry in entries:
        if not entry.name.startswith(".") and entry.is_dir():
            _find(entry.path, found)


# ---- starting over ---------------------------------------------------------------------------

def remove(run_dir: Folder, *names: str) -> None:
    """Remove files of the run (FINISHED when more epochs are asked for, error.json when an attempt starts)."""
    for name in names:
        try:
            os.unlink(path(run_dir, name))
        except FileNotFoundError:
            pass


# What train writes, and so what `train --restart` removes: nothing else in a run folder is ever deleted
# (the lock, a runner's raw output and records, files of the user's own).
TRAIN_MADE = (CONFIG, BINDINGS, COMMAND, META, HISTORY, METRICS, CHECKPOINTS, TENSORBOARD, LOG, HEARTBEAT,
              ERROR, FINISHED, "csv", "mlruns")


class NotARunFolder(BadInput, ValueError):
    """A path train must not make a run of; the message says why and what to do."""


def check_usable(run_dir: Folder) -> None:
    """NotARunFolder unless run_dir is missing, empty, or a run folder: train (and --restart) never takes
    over a file, a folder of the user's, or a folder of runs such as $RESULTS_DIR/tune_lr."""
    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise NotARunFolder(f"{run_dir} exists and is not a folder: give a new or empty folder, or a run folder")
    if not os.path.isdir(run_dir) or is_run_dir(run_dir):
        return
    entries = [e for e in os.listdir(run_dir) if not e.startswith(".")]
    inner = [e for e in entries if is_run_dir(os.path.join(run_dir, e))] or find([run_dir])
    if inner:
        raise NotARunFolder(f"{run_dir} holds run folders ({os.path.relpath(inner[0], run_dir)}...): "
                            "give the run its own folder, such as a new folder inside it")
    if entries or os.listdir(run_dir):
        raise NotARunFolder(f"{run_dir} is not empty and not a run folder: give a new or empty folder")


def clear(run_dir: Folder) -> None:
    """Remove what train wrote, for `train --restart`; files train did not make stay."""
    made = TRAIN_MADE + ((WANDB,) if os.path.exists(path(run_dir, os.path.join(WANDB, WANDB_ID))) else ())
    for name in made:  # wandb/ only where runkit's logger made it
        target = path(run_dir, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)


def checkpoint_path(run_dir: Folder) -> str:
    return os.path.join(run_dir, CHECKPOINTS, "last.ckpt")


def best_checkpoint_path(run_dir: Folder) -> str:
    return os.path.join(run_dir, CHECKPOINTS, "best.ckpt")
