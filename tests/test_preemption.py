"""A preempted run requeues its own SLURM job (runkit.training.preempt): the job named as scontrol knows it,
an array task by its array's id and index. The preemption itself, SIGUSR1 and the requeue through a real
SLURM, is shown in test_train_resume.py and test_slurm_train.py."""
from runkit.training.preempt import slurm_job_id


def test_slurm_job_id_names_the_array_task():
    assert slurm_job_id({}) is None
    assert slurm_job_id({"SLURM_JOB_ID": "7"}) == "7"
    assert slurm_job_id({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "8", "SLURM_ARRAY_TASK_ID": "1"}) == "8_1"
