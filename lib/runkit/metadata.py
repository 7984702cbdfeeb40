"""meta.json: where and with what code the run ran; written when each attempt starts and when it ends."""
import os
import platform
import socket
import subprocess
import sys
import time

from runkit import runs

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                   "SLURM_NNODES", "SLURM_NTASKS")


def begin(run_dir, device):
    import pytorch_lightning
    import torch
    meta = runs.read_json(run_dir, runs.META, default={})
    now = _now()
    meta.update({
        "start_time": meta.get("start_time", now),  # of the first attempt
        "attempt_start_time": now,
        "attempts": meta.get("attempts", 0) + 1,
        "end_time": None,
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pytorch_lightning.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "argv": sys.argv,
        "slurm": {name: os.environ[name] for name in SLURM_VARIABLES if name in os.environ},
        **git_state(),
    })
    runs.write_json(run_dir, runs.META, meta)


def end(run_dir):
    meta = runs.read_json(run_dir, runs.META, default={})
    meta["end_time"] = _now()
    runs.write_json(run_dir, runs.META, meta)


def git_state():
    """The commit of the code that ran, whether it had uncommitted changes, and those changes."""
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        try:
            done = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff": None}
    diff = git("diff", "HEAD") or ""
    return {"git_commit": commit.strip(), "git_dirty": bool(diff or git("status", "--porcelain")),
            "git_diff": diff}


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def device_name(device):
    """What the device is, for figures quoted later: the GPU's model, or the CPU's architecture."""
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
