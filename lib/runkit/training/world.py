"""A run resumed on another number of processes (devices x nodes): a SLURM allocation of 4 GPUs after one of 2,
or a DDP run continued on one device.

It cannot be exact: each process's share of an epoch's order (runkit.data.resumable.EpochOrder) is rebuilt for
the new world, so the rest of an interrupted epoch is drawn from other shares than the old processes had
left, and each process's random generators and running aggregates have no one-to-one heir. So the run
continues from its checkpoint, each new process taking the state of the old process of its rank (a process
beyond the old count: rank 0's generators, no running aggregates), and says so once, in train.log and in
meta.json's `world_resume`: "approximate: world size 2 → 4". The mark stays for the rest of the run (collect's
resume column says approximate).
"""
from pytorch_lightning import Callback

from runkit.training import metadata


def share(state, rank):
    """The per-process part of RunRecorder's checkpoint state that process `rank` resumes from."""
    ranks = state.get("ranks")
    if not ranks:
        return state
    if rank < len(ranks):
        return ranks[rank]
    return {**ranks[0], "logged": {}}  # a new process: generators to draw from, no sums of its own


def message(before, now):
    return f"approximate: world size {before} → {now}"


class WorldSize(Callback):
    """Keeps the world size in every checkpoint; after a resume into another, says the run is approximate."""

    def __init__(self, run_dir, log):
        self.run_dir, self.say, self.before = run_dir, log, None

    def state_dict(self):
        return {"world_size": self.trainer.world_size}

    def load_state_dict(self, state):
        self.before = state.get("world_size")

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer

    def on_train_start(self, trainer, pl_module):
        if self.before is None or self.before == trainer.world_size or not trainer.is_global_zero:
            return
        said = message(self.before, trainer.world_size)
        self.say(f"train: {said}: the rest of the interrupted epoch is drawn from the new processes' shares")
        metadata.update(self.run_dir, world_resume=said)
