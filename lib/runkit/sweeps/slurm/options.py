"""`runbatch --slurm`'s options, each with the environment variable a lab sets once in e.sh."""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runkit import errors

ENV = {
    "partition": "RUNBATCH_SLURM_PARTITION",
    "time": "RUNBATCH_SLURM_TIME",
    "gres": "RUNBATCH_SLURM_GRES",
    "cpus": "RUNBATCH_SLURM_CPUS",
    "mem": "RUNBATCH_SLURM_MEM",
    "account": "RUNBATCH_SLURM_ACCOUNT",
    "qos": "RUNBATCH_SLURM_QOS",
    "throttle": "RUNBATCH_SLURM_THROTTLE",
    "signal_seconds": "RUNBATCH_SLURM_SIGNAL_SECONDS",
    "max_requeues": "RUNBATCH_SLURM_MAX_REQUEUES",
    "sbatch_args": "RUNBATCH_SLURM_EXTRA",
    "nodes": "RUNBATCH_SLURM_NODES",
    "gpus_per_node": "RUNBATCH_SLURM_GPUS_PER_NODE",
    "ntasks_per_node": "RUNBATCH_SLURM_NTASKS_PER_NODE",
    "runs_per_task": "RUNBATCH_SLURM_RUNS_PER_TASK",
}
COUNTS = ("cpus", "throttle", "signal_seconds", "max_requeues", "nodes", "gpus_per_node", "ntasks_per_node",
          "runs_per_task")
SIGNAL_SECONDS, MAX_REQUEUES = 120, 20


@dataclass
class Options:
    partition: str | None = None
    time: str | None = None
    gres: str | None = None
    cpus: int | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    throttle: int | None = None
    signal_seconds: int = SIGNAL_SECONDS
    max_requeues: int = MAX_REQUEUES
    sbatch_args: list = field(default_factory=list)
    job_name: str | None = None
    nodes: int | None = None
    gpus_per_node: int | None = None
    ntasks_per_node: int | None = None
    dependency: str | None = None
    runs_per_task: int = 1

    @property
    def tasks_per_node(self) -> int:
        """Processes per node of a run: --ntasks-per-node, else one per GPU, else one."""
        return self.ntasks_per_node or self.gpus_per_node or 1

    @property
    def several(self) -> bool:
        """True if a run is several processes (started through srun)."""
        return (self.nodes or 1) * self.tasks_per_node > 1

    @classmethod
    def from_args(cls, given: dict[str, Any], environ: Mapping[str, str] = os.environ) -> Options:
        """Options from {name: value or None}, an unset one from its environment variable; BadInput if bad."""
        values = {}
        for name, var in ENV.items():
            value = given.get(name)
            if name == "sbatch_args":
                # The lab's flags first, then the user's: both apply (a later flag wins in sbatch).
                value = shlex.split(environ.get(var, "")) + list(value or [])
            elif value is None:
                value = environ.get(var) or None
            if value is not None:
                values[name] = _checked(name, var, value)
        values["job_name"] = given.get("job_name")
        dependency = given.get("dependency")
        if dependency is not None:
            if not dependency or any(c.isspace() for c in dependency):
                raise errors.BadInput(f"--dependency takes one SLURM dependency like afterok:1234, not {dependency!r}")
            values["dependency"] = dependency
        return cls(**values)


def _checked(name: str, var: str, value: Any) -> Any:
    flag = "--" + name.replace("_", "-")
    if name in COUNTS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < (0 if name in ("signal_seconds", "max_requeues") else 1):
            raise errors.BadInput(f"{flag} (or {var}) must be a whole number of at least "
                                 f"{0 if name in ('signal_seconds', 'max_requeues') else 1}, not {value!r}")
        return number
    items = value if isinstance(value, list) else [value]
    if any("\n" in str(v) for v in items):
        raise errors.BadInput(f"{flag} (or {var}) holds a newline; give one value per flag")
    if name == "sbatch_args" and any(not str(v).startswith("-") for v in items):
        raise errors.BadInput(f"{flag} (or {var}) takes sbatch flags like --constraint=a100, not {items!r}")
    return value
