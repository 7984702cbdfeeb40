"""A stand-in for train under SLURM: counts to N in small steps, resumable, and on SIGUSR1 saves its
count and requeues its own array task (as train does), then exits 128+10.

    python steps.py RUN_DIR N

RUN_DIR/count.json holds the count and how many times the job started. It is not `train`: it runs in
seconds, so the tests of runbatch --slurm's requeue rules stay quick.
"""
import os
import signal
import subprocess
import sys
import time

from runkit.rundir import runs


def main(run_dir, n):
    state = runs.read_json(run_dir, "count.json", {"count": 0, "starts": 0})
    state["starts"] += 1
    warned = []
    signal.signal(signal.SIGUSR1, lambda *_: warned.append(True))
    while state["count"] < n:
        time.sleep(0.2)
        state["count"] += 1
        runs.write_json(run_dir, "count.json", state)
        if warned:
            task = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
            subprocess.run(["scontrol", "requeue", task], check=True)
            return 128 + signal.SIGUSR1
    runs.write_json(run_dir, "count.json", state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
