"""meta.json: where and with what code the run ran; written when each attempt starts and when it ends."""
import inspect
import os
import platform
import socket
import sys

from runkit import git, timestamps
from runkit.rundir import hash_seed, runs
from runkit.training import lightning_package

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                   "SLURM_NNODES", "SLURM_NTASKS")
# What tells the processes of a distributed run apart (srun sets them for each task)
RANK_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID")


def rank_info(rank):
    return {"rank": rank, "host": socket.gethostname(), "pid": os.getpid(),
            "slurm": {name: os.environ[name] for name in RANK_VARIABLES if name in os.environ}}


def gather_ranks(trainer):
    """[rank_info of each process] of a distributed run, on every rank (a collective call); None if one process."""
    if trainer.world_size <= 1:
        return None
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    infos = [None] * dist.get_world_size()
    dist.all_gather_object(infos, rank_info(trainer.global_rank))
    return infos


def begin(run_dir, device, ranks=None, internals_warning=None, task=None):
    import torch

    meta = runs.read_json(run_dir, runs.META, default={})
    now = timestamps.now_iso()
    meta.update({
        "start_time": meta.get("start_time", now),  # of the first attempt
        "attempt_start_time": now,
        "attempts": meta.get("attempts", 0) + 1,
        "torch_threads": meta.get("torch_threads") or torch.get_num_threads(),  # of the first attempt, kept
        "hash_seed": hash_seed.current(),  # PYTHONHASHSEED of every process (runkit.rundir.hash_seed); None: random
        "end_time": None,
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning_package.version(),
        "lightning_package": lightning_package.active,  # pytorch_lightning, or lightning (lightning.pytorch)
        "internals_warning": internals_warning,  # None, or why the Lightning or gin version is not one checked
        "device": str(device),
        "device_name": device_name(device),
        "argv": sys.argv,
        "slurm": {name: os.environ[name] for name in SLURM_VARIABLES if name in os.environ},
        "ranks": ranks,  # one entry per process of a distributed run (its host, pid and SLURM ids), else None
        **code_state(),
        "project": project_state(task),  # the repository holding the task's module: the project's own commit
    })
    runs.write_json(run_dir, runs.META, meta)


def update(run_dir, **fields):
    """Set fields of meta.json (what an attempt learns once training starts: how its data resumes)."""
    meta = runs.read_json(run_dir, runs.META, default={})
    meta.update(fields)
    runs.write_json(run_dir, runs.META, meta)


def end(run_dir):
    meta = runs.read_json(run_dir, runs.META, default={})
    meta["end_time"] = timestamps.now_iso()
    runs.write_json(run_dir, runs.META, meta)


def code_state():
    """The code that ran: the batch's code snapshot (runkit.sweeps.snapshot) when it ran from one, else the checkout."""
    from runkit.sweeps import snapshot
    frozen = snapshot.current()
    if frozen is not None:
        return frozen
    return {"code_snapshot": None, **git.state(os.path.dirname(os.path.abspath(__file__)), timeout=30)}


def project_state(task):
    """{"module", "git_commit", "git_dirty", "git_diff", "git_root"} of the repository holding the task's module
    (a project of the user's, named by import path, lives in a repository of its own); its git fields are null
    when that module is in no repository (an installed package), and the whole is null without a task."""
    if task is None:
        return None
    cls = task if isinstance(task, type) else type(task)
    try:
        folder = os.path.dirname(os.path.abspath(inspect.getfile(cls)))
    except (TypeError, OSError):
        return {"module": cls.__module__, "git_commit": None, "git_dirty": None, "git_diff": None, "git_root": None}
    root = git.git(folder, "rev-parse", "--show-toplevel", timeout=30)
    return {"module": cls.__module__, **git.state(folder, timeout=30), "git_root": root.strip() if root else None}


def device_name(device):
    """What the device is, for figures quoted later: the GPU's model, or the CPU's architecture."""
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
