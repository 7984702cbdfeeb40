"""The sbatch script of (one array of) a batch, as text: a pure function of its arguments, so that what a
submission says can be read and tested without SLURM (and `runbatch --slurm --dry-run` prints it)."""
from __future__ import annotations

import os
import shlex
import sys

from runkit import cli
from runkit.rundir import runs
from runkit.sweeps import batch_folder as folder
from runkit.sweeps import snapshot
from runkit.sweeps.slurm.options import Options
from runkit.sweeps.spec import Spec

TASK_MODULE = "runkit.sweeps.slurm.task"


def render(batch_dir: str, specs: list[Spec], options: Options, restart_changed: bool = False, part: int = 0,
           first: int = 0, frozen: str | None = None, lib: str = cli.LIB, python: str = sys.executable) -> str:
    """#SBATCH lines, then exec the task runner (no shell sees spec values). part, first: the array's number
    in the batch and its first task; frozen: the project's root when the batch runs from a code snapshot
    (runkit.sweeps.snapshot), else None; lib, python: the library and interpreter the tasks run. With
    options.runs_per_task K > 1, each task runs K of the specs, one after another."""
    per = options.runs_per_task
    n = folder.task_count(len(specs), per)
    lines = ["#!/bin/bash", *_says(len(specs), n, per, first),
             "# Resubmit by hand: sbatch " + shlex.quote(os.path.join(batch_dir, folder.script_name(part))),
             *_sbatch_lines(batch_dir, specs, options, part, n)]
    exports = []
    if frozen is not None:
        code = os.path.join(batch_dir, snapshot.FOLDER)
        if lib == frozen or lib.startswith(frozen + os.sep):
            lib = os.path.join(code, os.path.relpath(lib, frozen))  # the task runner runs from the snapshot too
        exports.append(f"export {snapshot.ENV}={shlex.quote(code)}")
    if options.several:
        exports.append("export RUNKIT_SLURM_SRUN=1")
    lines += [
        "",
        f"export PYTHONPATH={shlex.quote(lib)}${{PYTHONPATH:+:$PYTHONPATH}}",
        f"export RUNKIT_SLURM_MAX_REQUEUES={options.max_requeues}",
        *exports,
        f"exec {shlex.quote(python)} -m {TASK_MODULE} {shlex.quote(os.path.join(batch_dir, folder.SPECS))}"
        ' "$SLURM_ARRAY_TASK_ID"' + (f" --first={first}" if first else "")
        + (f" --runs-per-task={per}" if per > 1 else "") + (" --restart-changed" if restart_changed else ""),
    ]
    return "\n".join(lines) + "\n"


def _says(runs_count: int, n: int, per: int, first: int) -> list[str]:
    """The comment lines that say what the script runs."""
    task = f"{first} + i" if first else "i"
    if per == 1:
        return [f"# runkit: {n} run{'s' * (n != 1)} as one SLURM job array, written by `runbatch --slurm`.",
                f"# Task i runs line {task} (from 0) of specs.jsonl, holding the run's lock; a finished run is "
                "skipped."]
    return [f"# runkit: {runs_count} runs, {per} per task, as one SLURM job array of {n} tasks, written by "
            "`runbatch --slurm --runs-per-task`.",
            f"# Task i runs lines ({task}) x {per} to ({task}) x {per} + {per - 1} (from 0) of specs.jsonl, one "
            "after another, each holding its run's lock; a finished run is skipped."]


def _sbatch_lines(batch_dir: str, specs: list[Spec], options: Options, part: int, n: int) -> list[str]:
    array = f"0-{n - 1}" + (f"%{options.throttle}" if options.throttle else "")
    lines = [
        f"#SBATCH --job-name={options.job_name or _job_name(specs)}",
        f"#SBATCH --array={array}",
        f"#SBATCH --output={_quote(os.path.join(batch_dir, folder.links_name(part), '%a', runs.SLURM_LOG))}",
        "#SBATCH --open-mode=append",
        # On the warning signal the run checkpoints and requeues itself; the log continues.
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{options.signal_seconds}",
    ]
    if options.nodes or options.ntasks_per_node or options.gpus_per_node:
        # A run of several processes: srun starts one per task (runkit.sweeps.slurm.task), Lightning ranks them.
        lines += [f"#SBATCH --nodes={options.nodes or 1}", f"#SBATCH --ntasks-per-node={options.tasks_per_node}"]
        if options.gpus_per_node:
            lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    for flag, value in (("partition", options.partition), ("time", options.time), ("gres", options.gres),
                        ("cpus-per-task", options.cpus), ("mem", options.mem), ("account", options.account),
                        ("qos", options.qos), ("dependency", options.dependency)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={_quote(str(value))}")
    return lines + [f"#SBATCH {_quote(arg)}" for arg in options.sbatch_args]


def _job_name(specs: list[Spec]) -> str:
    names = {s.get("experiment") for s in specs}
    only = names.pop() if len(names) == 1 else None
    return only if isinstance(only, str) and only and only.replace("_", "").replace("-", "").isalnum() else "runkit"


def _quote(text: str) -> str:
    """sbatch reads #SBATCH lines with its own parser: double-quote a value that holds spaces."""
    return f'"{text}"' if any(c.isspace() for c in text) else text
