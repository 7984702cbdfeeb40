"""A batch folder, <results folder of the runs>/batches/<time>/: its place, its files and its record.

`runbatch --slurm` writes one for every submission (runkit.sweeps.slurm), `runbatch --snapshot` one for the
code it runs from (runkit.sweeps.local); docs/slurm.md describes it:
  specs.jsonl   the runs not finished and not running or queued, one per task (task i = line i, from 0)
  job.sbatch    the script, readable and kept: `sbatch job.sbatch` resubmits it by hand
  batch.json    the job ids, once submitted: {"job_id", "jobs": [{"job_id", "script", "first", "count"}], ...}
  .tasks/<i>    a link to task i's run folder, so SLURM writes RUN_DIR/slurm-<job>_<task>.log itself
  code/         the project's code as submitted (runkit.sweeps.snapshot)
A batch larger than the cluster's MaxArraySize is several arrays: array k has its own script job.<k>.sbatch and
links .tasks.<k>/ (array k's task j is batch task first+j). With K runs per task, task t runs lines tK..tK+K-1.
"""
from __future__ import annotations

import json
import os

from runkit.rundir import runs
from runkit.sweeps.spec import Spec
from runkit.timestamps import now_iso, now_stamp

SCRIPT, SPECS, RECORD, LINKS = "job.sbatch", "specs.jsonl", "batch.json", ".tasks"


def results_folder(specs: list[Spec]) -> str:
    """The folder that holds every run folder of the batch: where batches/ goes."""
    parents = [os.path.dirname(os.path.abspath(s["run_dir"])) for s in specs]
    return os.path.commonpath(parents)


def new_batch_dir(specs: list[Spec]) -> str:
    """A fresh batch folder name under <results folder>/batches/ (not created)."""
    root = os.path.join(results_folder(specs), "batches")
    stamp = now_stamp()
    candidate, n = os.path.join(root, stamp), 1
    while os.path.exists(candidate):
        n += 1
        candidate = os.path.join(root, f"{stamp}-{n}")
    return candidate


def script_name(part: int) -> str:
    return SCRIPT if part == 0 else f"job.{part}.sbatch"


def links_name(part: int) -> str:
    return LINKS if part == 0 else f"{LINKS}.{part}"


def task_count(runs_count: int, per: int) -> int:
    """How many array tasks hold runs_count runs, per a task."""
    return -(-runs_count // per)


def write_record(batch_dir: str, record: dict) -> None:
    """batch.json, stamped with the time of writing."""
    record = {**record, "submitted": now_iso()}
    runs.write_atomic(os.path.join(batch_dir, RECORD), json.dumps(record, indent=2) + "\n")


def read_record(batch_dir: str) -> dict:
    try:
        with open(os.path.join(batch_dir, RECORD), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def arrays(batch_dir: str) -> list[dict]:
    """The arrays of a submitted batch: [{"job_id", "script", "first", "count"}] (one for older batch folders)."""
    record = read_record(batch_dir)
    if "jobs" in record:
        return record["jobs"]
    if record.get("job_id"):
        return [{"job_id": record["job_id"], "script": os.path.join(batch_dir, SCRIPT), "first": 0,
                 "count": record.get("runs", 0)}]
    return []


def array_task(batch_dir: str, task: int) -> tuple[str, int, str] | None:
    """(job id, array task id, script) of the batch's task number `task`, or None if never submitted."""
    for array in arrays(batch_dir):
        if array["first"] <= task < array["first"] + array["count"]:
            return array["job_id"], task - array["first"], array["script"]
    return None
