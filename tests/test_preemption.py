"""A preempted run requeues its own SLURM job (runkit.sweeps.slurm.client, which train calls on a stop signal):
the job named as scontrol knows it, an array task by its array's id and index. The preemption itself,
SIGUSR1 and the requeue through a real SLURM, is shown in test_train_resume.py and test_slurm_train.py."""
from runkit.sweeps.slurm.client import job_to_requeue


def test_slurm_job_id_names_the_array_task():
    assert job_to_requeue({}) is None
    assert job_to_requeue({"SLURM_JOB_ID": "7"}) == "7"
    assert job_to_requeue({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "8", "SLURM_ARRAY_TASK_ID": "1"}) == "8_1"
