"""The run's hash seed: one for every process of a run, so that iterating a set of strings (a vocabulary from
`set(text)`) gives the same order in every attempt, warm or cold, and in every rank.

Python draws a new seed for `str` hashes in every process unless PYTHONHASHSEED fixes it, and only as the
interpreter starts. A run's seed is the one meta.json records (`hash_seed`, written by its first attempt):
for a new run (or --restart), PYTHONHASHSEED when it is a number, else 0. `train` re-executes itself with it
when its own differs (runkit.training.cli_main, before the heavy imports), and sets it in its environment,
which a distributed run's other ranks inherit; runbatch's warm process starts with the default for new runs
(runkit.sweeps.warm), and the runs forked from it share its hash secret.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from runkit.rundir import runs
from runkit.rundir.lock import Folder

# This interpreter's PYTHONHASHSEED as it started: read when train or the warm process first imports this
# module, before anything changes the environment (a forked warm run gets the environment of its request).
STARTED_WITH = os.environ.get("PYTHONHASHSEED")


def default(environ: Mapping[str, str] | None = None) -> int:
    """A new run's hash seed: PYTHONHASHSEED if it is a number (0 to 4294967295), else 0."""
    value = (os.environ if environ is None else environ).get("PYTHONHASHSEED", "")
    return int(value) if value.isdigit() and int(value) < 2**32 else 0


def of_run(run_dir: Folder, restart: bool = False) -> int:
    """The hash seed of the run in run_dir: meta.json's, else (a new run, or one started over) the default."""
    if not restart and os.path.isdir(run_dir):
        try:
            recorded = (runs.read_json(run_dir, runs.META) or {}).get("hash_seed")
        except runs.CorruptRun:
            recorded = None
        if isinstance(recorded, int):
            return recorded
    return default()


def current() -> int | None:
    """This process's hash seed, or None where its hashes are random."""
    return int(STARTED_WITH) if STARTED_WITH and STARTED_WITH.isdigit() else None


def settle(run_dir: Folder, restart: bool, script: str) -> None:
    """Make this process hash with the run's seed: re-execute `script` (this tool, with the same arguments)
    under it if this process's differs, else set it in the environment for the processes it starts."""
    wanted = of_run(run_dir, restart)
    if current() != wanted:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, script, *sys.argv[1:]],
                  {**os.environ, "PYTHONHASHSEED": str(wanted)})
    os.environ["PYTHONHASHSEED"] = str(wanted)
