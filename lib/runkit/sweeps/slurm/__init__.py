"""`runbatch --slurm`: a batch of run specs as SLURM job arrays, and waiting for them (docs/slurm.md).

One concern a module: options (the flags and their environment variables), client (every call to sbatch,
squeue and scontrol), script (the sbatch script, a pure function), submit (which runs go, and the submission),
wait (polling with back-off), outcomes (rebuilt from the run folders: SLURM forgets finished jobs), task (what
each array task runs), runbatch (the flow of `runbatch --slurm`). The batch folder's layout is
runkit.sweeps.batch_folder, shared with the local runner; each run folder gets slurm.json (runs.py): its batch
and task, then each attempt's SLURM ids.
"""
