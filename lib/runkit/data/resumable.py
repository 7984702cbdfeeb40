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
    """The indices of this rank's share of an epoch: a function of (seed, epoch). A permutation of the n
    samples, or (`replacement`, as torch's RandomSampler) `size` draws with replacement. Under DDP every
    rank gets as many (DDP steps in step): as Lightning's DistributedSampler does, the order is padded with
    its own first indices to a multiple of the ranks, so no sample is left out of an epoch."""

    def __init__(self, n, seed, shuffle=True, rank=0, world=1, replacement=False, size=None):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.replacement, self.size = replacement, n if size is None else size
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-self.size // self.world)

    @property
    def offset(self):
        """The position in the epoch's whole (padded) order of this rank's first sample."""
        return self.rank * len(self)

    def indices(self):
        random = generator(self.seed, self.epoch)
        if not self.shuffle:
            order = torch.arange(self.n)
        elif self.replacement:
            order = torch.randint(self.n, (self.size,), generator=random)
        else:
            order = torch.randperm(self.n, generator=random)[:self.size]
        padding = len(self) * self.world - len(order)
        if padding:
            order = torch.cat([order, order.repeat(-(-padding // len(order)))[:padding]])
        return order[self.offset:self.offset + len(self)]


class _Resumable:
    """The position protocol Lightning checkpoints: (epoch, batches consumed)."""

    batch_sampler = None  # what Lightning's loader checks look for: the order is `sampler`

    def __init__(self, batch_size, order, drop_last=False):
        self.batch_size, self.sampler, self.drop_last = batch_size, order, drop_last
        self.consumed, self._resume = 0, None

    def __len__(self):
        whole, rest = divmod(len(self.sampler), self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

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


class Batch(list):
    """The dataset indices of one batch, and where it starts: (epoch, position in the epoch of its first
    sample). What the loader's batch sampler hands to the process that loads it."""
    __slots__ = ("epoch", "position")

    def __init__(self, indices, epoch, position):
        super().__init__(indices)
        self.epoch, self.position = epoch, position


class SeededSamples(Dataset):
    """A dataset loaded a Batch at a time: the inner dataset's items at its indices, loaded with the global
    random generators seeded once from (seed, epoch, position of the batch), its samples in order. So a
    sample's draws are a function of (seed, epoch, position in the epoch) whichever worker loads its batch
    (an epoch's batches are fixed), an index drawn twice in an epoch (with replacement) gets draws of its own,
    and the seeding costs once a batch, not once a sample."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, batch):  # what DataLoader's fetcher calls with a batch sampler's batch
        many = getattr(self.dataset, "__getitems__", None)
        with seeded(self.seed, batch.epoch, batch.position):
            return many(list(batch)) if many else [self.dataset[index] for index in batch]


class _EpochBatches:
    """The batch sampler of SampleBatches: the epoch's Batches from `start` to its end; the batches before
    `start` (consumed before a resume) are skipped without loading them."""

    def __init__(self, owner):
        self.owner, self.start = owner, 0

    def __len__(self):
        return len(self.owner) - self.start

    def __iter__(self):
        owner = self.owner
        order = owner.sampler
        indices, size, epoch, offset = order.indices().tolist(), owner.batch_size, order.epoch, order.offset
        for batch in range(self.start, len(owner)):
            first = batch * size
            yield Batch(indices[first:first + size], epoch, offset + first)


class SampleBatches(_Resumable):
    """A DataLoader over a map-style dataset, with workers that live across epochs unless told otherwise.
    Its generator is its own, so starting workers never draws from torch's global generator (which the
    model's dropout uses). `options` are DataLoader's (collate_fn, prefetch_factor, timeout, ...);
    `worker_init_fn` is called in each worker after runkit's own set-up."""

    def __init__(self, dataset, batch_size, order, seed, num_workers=0, pin_memory=False, drop_last=False,
                 persistent_workers=None, worker_init_fn=None, **options):
        super().__init__(batch_size, order, drop_last)
        self.batches = _EpochBatches(self)
        persistent = num_workers > 0 if persistent_workers is None else persistent_workers and num_workers > 0
        self.loader = DataLoader(SeededSamples(dataset, seed), batch_sampler=self.batches,
                                 num_workers=num_workers, persistent_workers=persistent,
                                 pin_memory=pin_memory, generator=generator(seed, -1),
                                 worker_init_fn=_WorkerInit(worker_init_fn) if num_workers else None, **options)

    def __iter__(self):  # a generator: the start is read when the first batch is asked for, not before
        self.batches.start = self._start()
        yield from self.loader


class _WorkerInit:
    """A worker must not outlive train: it dies with its parent, even one spawned rather than forked (a
    forked one holds no copy of the run's lock: runkit.rundir.lock). Then the user's own worker_init_fn,
    if any. (A class, not a closure: workers may be spawned, not forked.)"""

    def __init__(self, then=None):
        self.then = then

    def __call__(self, worker_id):
        from runkit.training import stopping
        stopping.die_with_parent()
        if self.then is not None:
            self.then(worker_id)
