"""Loaders that resume exactly in the middle of an epoch.

The order of an epoch is a function of (seed, epoch), so a resumed run can compute the epoch it was in and
skip the batches already done. Lightning asks each training loader for its `state_dict()` when it saves a
checkpoint and hands it back through `load_state_dict()` on restart; the position it reports is `consumed`,
the count of batches whose training step finished, which runkit's RunRecorder sets after each step (the
loader itself runs ahead: Lightning prefetches a batch). RunRecorder also keeps the positions in its own
state and hands them back before the epoch starts: Lightning 2.6 skips giving them back when something
(`estimated_stepping_batches`, say) built the training loader before the checkpoint was restored.
Lightning calls the sampler's `set_epoch` before each epoch.
"""
import torch
from torch.utils.data import DataLoader, Dataset

from runkit.training.seeds import generator, seeded


class EpochOrder:
    """The indices of this rank's share of an epoch: a permutation that is a function of (seed, epoch)."""

    def __init__(self, n, seed, shuffle=True, rank=0, world=1):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n // self.world if self.world > 1 else self.n  # every rank gets as many: DDP steps in step

    def indices(self):
        order = torch.randperm(self.n, generator=generator(self.seed, self.epoch)) if self.shuffle \
            else torch.arange(self.n)
        share = len(self)
        return order[self.rank * share:(self.rank + 1) * share]


class _Resumable:
    """The position protocol Lightning checkpoints: (epoch, batches consumed)."""

    batch_sampler = None  # what Lightning's loader checks look for: the order is `sampler`

    def __init__(self, batch_size, order):
        self.batch_size, self.sampler = batch_size, order
        self.consumed, self._resume = 0, None

    def __len__(self):
        return -(-len(self.sampler) // self.batch_size)

    def state_dict(self):
        return {"epoch": self.sampler.epoch, "consumed": self.consumed}

    def load_state_dict(self, state):
        self._resume = (state["epoch"], state["consumed"])

    def _start(self):
        """The first batch of this pass: where the checkpoint left off, if it was saved in this epoch."""
        resume, self._resume = self._resume, None
        if resume and resume[0] == self.sampler.epoch and resume[1] < len(self):
            return resume[1]
        return 0


class TensorBatches(_Resumable):
    """Batches cut from tensors where they are (the device); `augment(x, generator)` draws from a generator
    seeded by (seed, epoch, batch), so augmentation does not depend on how often the run was interrupted."""

    def __init__(self, x, y, batch_size, order, augment=None, seed=0):
        super().__init__(batch_size, order)
        self.x, self.y, self.augment, self.seed = x, y, augment, seed

    def __iter__(self):
        indices, size, epoch = self.sampler.indices().to(self.x.device), self.batch_size, self.sampler.epoch
        for batch in range(self._start(), len(self)):
            index = indices[batch * size:(batch + 1) * size]
            x = self.x[index]
            if self.augment is not None:
                x = self.augment(x, generator(self.seed, epoch, batch))
            yield x, self.y[index]


class SeededSamples(Dataset):
    """A dataset whose item (epoch, index) is the inner dataset's item `index`, computed with the global
    random generators seeded from (seed, epoch, index): the same sample whichever worker loads it."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        with seeded(self.seed, epoch, index):
            return self.dataset[index]


class _EpochBatches:
    """The batch sampler of SampleBatches: lists of (epoch, index) keys from `start` to the epoch's end."""

    def __init__(self, owner):
        self.owner, self.start = owner, 0

    def __len__(self):
        return len(self.owner) - self.start

    def __iter__(self):
        owner = self.owner
        indices, size, epoch = owner.sampler.indices().tolist(), owner.batch_size, owner.sampler.epoch
        for batch in range(self.start, len(owner)):
            yield [(epoch, i) for i in indices[batch * size:(batch + 1) * size]]


class SampleBatches(_Resumable):
    """A DataLoader over a map-style dataset with workers that live across epochs. Its generator is its own,
    so starting workers never draws from torch's global generator (which the model's dropout uses)."""

    def __init__(self, dataset, batch_size, order, seed, num_workers=0, pin_memory=False):
        super().__init__(batch_size, order)
        self.batches = _EpochBatches(self)
        self.loader = DataLoader(SeededSamples(dataset, seed), batch_sampler=self.batches,
                                 num_workers=num_workers, persistent_workers=num_workers > 0,
                                 pin_memory=pin_memory, generator=generator(seed, -1),
                                 worker_init_fn=_worker_init if num_workers else None)

    def __iter__(self):  # a generator: the start is read when the first batch is asked for, not before
        self.batches.start = self._start()
        yield from self.loader


def _worker_init(_worker_id):
    """A worker must not outlive train nor keep its run: it dies with its parent, and closes its copy of the
    run's lock (a lock held by a forked worker would keep a killed run 'held by another process')."""
    from runkit.rundir import lock
    from runkit.training import stopping
    lock.close_held()
    stopping.die_with_parent()
