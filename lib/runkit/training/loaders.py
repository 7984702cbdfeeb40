"""The user's own training DataLoader, rebuilt so that a killed run resumes it exactly.

Lightning re-instantiates a DataLoader to inject a DistributedSampler; runkit does the same earlier, as the
loader leaves `train_dataloader()`: a `torch.utils.data.DataLoader` over a map-style Dataset with the default
samplers becomes runkit.data.resumable.SampleBatches over the same dataset, with the same batch size,
drop_last, collate_fn, workers, pin_memory, persistent_workers, prefetch_factor, timeout and worker_init_fn
(called after runkit's own). What changes is only what makes it resumable:
- the order is a function of (seed, epoch): a permutation for shuffle=True / RandomSampler (with or without
  replacement), 0..n-1 for SequentialSampler, and under DDP this rank's share of it;
- each batch is loaded with torch's, numpy's and Python's global generators seeded once from (seed, epoch,
  position in the epoch of its first sample), whichever worker loads it;
- a mid-epoch resume skips the consumed batches' indices without loading them.
Validation and test loaders are left as they are. What cannot be rebuilt (an IterableDataset, a sampler or
batch sampler of the user's) trains as Lightning trains it, and the run says so (LoaderReport).
"""
from pytorch_lightning.callbacks import Callback
from torch.utils.data import BatchSampler, DataLoader, IterableDataset, RandomSampler, SequentialSampler

from runkit.data.resumable import EpochOrder, SampleBatches
from runkit.training import lightning_package, metadata


def rebuild(loader, seed, rank=0, world=1):
    """(the loader to train on, None when it resumes exactly, else the reason it does not)."""
    if hasattr(loader, "consumed") and hasattr(loader, "load_state_dict"):
        return loader, None  # runkit's own (runkit.data): resumable already
    if not isinstance(loader, DataLoader):
        return loader, f"a {type(loader).__name__}, not a torch DataLoader: its order is its own"
    if isinstance(loader.dataset, IterableDataset):
        return loader, f"an IterableDataset ({type(loader.dataset).__name__}): its order is its own"
    batches, sampler = loader.batch_sampler, loader.sampler
    if batches is None:
        return loader, "batch_size=None (no automatic batching)"
    if type(batches) is not BatchSampler:
        return loader, f"its own batch sampler ({type(batches).__name__})"
    n = len(loader.dataset)
    if type(sampler) is RandomSampler:  # its generator, if the user gave one, is replaced by (seed, epoch)
        order = EpochOrder(n, seed, True, rank, world, sampler.replacement, sampler.num_samples)
    elif type(sampler) is SequentialSampler:
        order = EpochOrder(n, seed, False, rank, world)
    else:
        return loader, f"its own sampler ({type(sampler).__name__})"
    options = {"collate_fn": loader.collate_fn, "timeout": loader.timeout,
               "multiprocessing_context": loader.multiprocessing_context}
    if loader.num_workers:
        options["prefetch_factor"] = loader.prefetch_factor
    rebuilt = SampleBatches(loader.dataset, batches.batch_size, order, seed, num_workers=loader.num_workers,
                            pin_memory=loader.pin_memory, drop_last=batches.drop_last,
                            persistent_workers=loader.persistent_workers, worker_init_fn=loader.worker_init_fn,
                            **options)
    return rebuilt, None


class LoaderReport(Callback):
    """Rebuilds what `train_dataloader()` returns (of the data module and of the task, whichever Lightning
    asks) and, at the start of training, says once whether the run resumes exactly: a line in train.log and
    `data_resume` in meta.json. Until the first training step has run, it also knows which component a
    failure implicates (`phase`: "data" while the data is set up, its loader built and its first batch
    drawn; "task" while the task sets up its model and optimizers, and runs its first step)."""

    def __init__(self, run_dir, owners, seed, log):
        self.run_dir, self.seed, self.say, self.found = run_dir, seed, log, {}
        self.trainer = None
        self.phase, self.stepped = "data", False  # Lightning sets the data module up first
        for owner in owners:
            if lightning_package.defines(owner, "train_dataloader"):  # Lightning asks the data module's, else the task's
                self._wrap(owner)

    def _wrap(self, owner):
        original = owner.train_dataloader
        name = f"{type(owner).__name__}.train_dataloader"

        def train_dataloader():
            self.phase = "data"
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            loader, reason = rebuild(original(), self.seed, rank, world)
            self.found = {"loader": name, "exact": reason is None, **({"reason": reason} if reason else {})}
            return loader
        owner.train_dataloader = train_dataloader  # an instance attribute: what Lightning's hooks call

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer
        if stage == "fit":
            self.phase = "task"  # the data module's setup is done; the task's model and optimizers next

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.stepped:
            self.phase = "task"  # the first batch is drawn: the task's first step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.stepped = True

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero or not self.found:
            return
        found = self.found
        self.say(f"data: {found['loader']} resumes exactly" if found["exact"] else
                 f"data: {found['loader']} resumes approximately, as Lightning resumes it: {found['reason']}")
        metadata.update(self.run_dir, data_resume=found)
