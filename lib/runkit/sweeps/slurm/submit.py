"""Which runs of a batch go to SLURM, and submitting them: the batch folder written (runkit.sweeps.batch_folder),
the code frozen, one job array per MaxArraySize tasks, and each run folder told its batch and task."""
from __future__ import annotations

import os

from runkit import cli, errors
from runkit.rundir import runs
from runkit.sweeps import batch, snapshot
from runkit.sweeps import batch_folder as folder
from runkit.sweeps.batch import Verdict
from runkit.sweeps.slurm import client
from runkit.sweeps.slurm.options import Options
from runkit.sweeps.slurm.script import render
from runkit.sweeps.spec import Spec


def queued(specs: list[Spec]) -> set[str]:
    """The run folders of specs whose runs are queued or running in a SLURM job array we submitted."""
    read = {s["run_dir"]: runs.read_slurm(s["run_dir"]) for s in specs}
    recorded = {d: r for d, r in read.items() if r is not None and r.get("batch_dir")}
    if not recorded:
        return set()
    live = client.squeue()
    out = set()
    for run_dir, record in recorded.items():
        where = folder.array_task(record["batch_dir"], int(record["task"]))
        if where is None:
            continue
        job, task, script = where
        state = live.get((job, str(task)))
        if state and state[1] == script and state[0] not in client.FINAL:
            out.add(run_dir)
    return out


def split(specs: list[Spec], restart_changed: bool = False) -> tuple[list[Spec], list[tuple[Spec, Verdict]]]:
    """(specs to submit, [(spec, batch.Verdict)] of the others): finished, running, queued under SLURM, conflicts."""
    verdicts = batch.pending(specs, restart_changed)
    waiting = queued([s for s, v in verdicts if v.action == "run"])
    todo = [s for s, v in verdicts if v.action == "run" and s["run_dir"] not in waiting]
    others = [(s, batch.Verdict("skipped", "queued") if s["run_dir"] in waiting else v)
              for s, v in verdicts if v.action != "run" or s["run_dir"] in waiting]
    return todo, others


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[(first, count)] of arrays of at most `size` tasks covering n tasks."""
    return [(first, min(size, n - first)) for first in range(0, n, size)]


def scripts(batch_dir: str, specs: list[Spec], options: Options, restart_changed: bool,
            frozen: str | None) -> list[tuple[int, int, str]]:
    """[(first task, task count, script text)] of the batch's arrays, MaxArraySize tasks each at most."""
    per = options.runs_per_task
    parts = chunks(folder.task_count(len(specs), per), client.max_array_size())
    return [(first, count, render(batch_dir, specs[first * per:(first + count) * per], options, restart_changed,
                                  part, first, frozen)) for part, (first, count) in enumerate(parts)]


def submit(specs: list[Spec], options: Options, restart_changed: bool = False,
           freeze: bool = True) -> tuple[list[str], str]:
    """Write the batch folder, snapshot the code (freeze), submit its arrays (several if the batch is larger
    than MaxArraySize), record the job ids: ([job id of each array], batch folder)."""
    batch_dir = folder.new_batch_dir(specs)
    frozen = snapshot.project_root() if freeze else None
    per = options.runs_per_task
    parts = scripts(batch_dir, specs, options, restart_changed, frozen)
    client.check(parts[0][2])
    os.makedirs(batch_dir)
    if frozen is not None:
        made = snapshot.make(batch_dir, frozen)
        cli.say(f"{snapshot.said(frozen, made)}")
    with open(os.path.join(batch_dir, folder.SPECS), "w", encoding="utf-8") as stream:
        for s in specs:
            cli.write_jsonl(s, stream)
    for part, (first, count, text) in enumerate(parts):
        os.makedirs(os.path.join(batch_dir, folder.links_name(part)))
        for j in range(count):
            if per > 1:  # the task's own log; each run's output goes to its folder (slurm.task)
                os.makedirs(os.path.join(batch_dir, folder.links_name(part), str(j)))
            for s in specs[(first + j) * per:(first + j + 1) * per]:
                os.makedirs(s["run_dir"], exist_ok=True)
                if per == 1:
                    os.symlink(os.path.abspath(s["run_dir"]), os.path.join(batch_dir, folder.links_name(part), str(j)))
                runs.record_slurm_submission(s["run_dir"], batch_dir, first + j)
        runs.write_atomic(os.path.join(batch_dir, folder.script_name(part)), text)
    jobs: list[dict] = []
    record = {"job_id": None, "jobs": jobs, "runs": len(specs),
              "code_snapshot": os.path.join(batch_dir, snapshot.FOLDER) if frozen else None,
              **({"runs_per_task": per} if per > 1 else {})}
    for part, (first, count, _text) in enumerate(parts):
        script = os.path.join(batch_dir, folder.script_name(part))
        job_id, said = client.sbatch(script)
        if job_id is None:
            folder.write_record(batch_dir, record)
            raise errors.WorkFailed(f"sbatch failed: {said} (batch folder {batch_dir}; "
                                    f"{len(jobs)} of {len(parts)} arrays submitted)")
        jobs.append({"job_id": job_id, "script": script, "first": first, "count": count})
        record["job_id"] = jobs[0]["job_id"]
        folder.write_record(batch_dir, record)
    return [j["job_id"] for j in jobs], batch_dir
