"""Requeue this SLURM job after a preemption signal, so the run continues from its checkpoint."""
import os
import subprocess


def slurm_job_id(environ=os.environ):
    """The id scontrol requeue needs: ARRAYJOB_TASK for an array task, else the job id; None outside SLURM."""
    if "SLURM_JOB_ID" not in environ:
        return None
    if environ.get("SLURM_ARRAY_JOB_ID") and environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ["SLURM_JOB_ID"]


def requeue(log):
    """Ask SLURM to requeue this job; returns True if scontrol accepted it."""
    job = slurm_job_id()
    if job is None:
        return False
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        log(f"scontrol requeue {job} failed: {e}")
        return False
    if done.returncode != 0:
        log(f"scontrol requeue {job} failed: {done.stderr.strip()}")
        return False
    log(f"requeued SLURM job {job}")
    return True
