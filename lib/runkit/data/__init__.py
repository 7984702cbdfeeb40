"""Data modules: one file each, registered by name in runkit.training.registry.DATA. Any LightningDataModule works.

Two kinds ship, both resumable exactly in the middle of an epoch (runkit.data.resumable says how):
- TensorData: data sets small enough to hold as tensors on the device, cut into batches there. No workers
  and no per-sample Python: this is what keeps tiny models fast.
- SampleData: map-style Datasets read lazily (from disk) and batched by DataLoader workers, with random
  augmentation inside the workers.

A data module tells the task what it needs to know by attributes: a task parameter with no default (say
`input_shape` or `n_classes`) is filled from the data module's attribute of the same name. `seed` (from
`training_loop.seed`) is passed to a data module whose constructor takes one.
"""
import pytorch_lightning as pl
import torch

from runkit.data.resumable import EpochOrder, SampleBatches, TensorBatches
from runkit.errors import BadInput
from runkit.training.plugins import import_all


class DataMissing(BadInput):
    """The data is not on disk and cannot be fetched; the message names the files expected and where."""


class _Splits(pl.LightningDataModule):
    """What both kinds share: the seed, the batch sizes, this rank's share of each epoch, the three loaders
    (a subclass makes one split's batches: `_batches(split, shuffle, batch_size)`)."""

    def __init__(self, batch_size, val_batch_size, seed):
        super().__init__()
        self.batch_size, self.val_batch_size, self.seed = batch_size, val_batch_size or batch_size, seed

    def order(self, n, shuffle):
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        return EpochOrder(n, self.seed, shuffle=shuffle, rank=rank, world=world)

    def train_dataloader(self):
        return self._batches("train", True, self.batch_size)

    def val_dataloader(self):
        return self._batches("val", False, self.val_batch_size)

    def test_dataloader(self):
        if not self.has_test:
            raise DataMissing(f"{type(self).__name__} has no test split")
        return self._batches("test", False, self.val_batch_size)


class TensorData(_Splits):
    """In-memory tensors. A subclass implements `load()` -> {"train": (x, y), "val": (x, y)[, "test": ...]}
    and may set `augment(x_batch, generator) -> x_batch`, vectorized and deterministic given the generator."""

    augment = None

    def __init__(self, batch_size=128, val_batch_size=1024, seed=0):
        super().__init__(batch_size, val_batch_size, seed)
        self.splits = None

    def load(self):
        raise NotImplementedError

    def setup(self, stage=None):
        if self.splits is None:
            device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
            loaded, self._loaded = self._loaded or self.load(), None
            self.splits = {name: tuple(t.to(device) for t in pair) for name, pair in loaded.items()}

    _loaded = None

    @property
    def has_test(self):
        """Whether there is a test split (training_loop.test asks before training: loads the data once)."""
        if self.splits is None and self._loaded is None:
            self._loaded = self.load()
        return "test" in (self.splits or self._loaded)

    def _batches(self, split, shuffle, batch_size):
        x, y = self.splits[split]
        augment = self.augment if split == "train" else None
        return TensorBatches(x, y, batch_size, self.order(len(y), shuffle), augment, self.seed)


class SampleData(_Splits):
    """Map-style Datasets batched by DataLoader workers. A subclass implements `datasets()` ->
    {"train": Dataset, "val": Dataset[, "test": ...]}; the train set may draw random numbers (torch, random,
    numpy) in __getitem__: each batch's draws are seeded from (seed, epoch, position in the epoch)."""

    def __init__(self, batch_size=64, val_batch_size=None, num_workers=2, seed=0, pin_memory=False):
        super().__init__(batch_size, val_batch_size, seed)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.sets = None

    def datasets(self):
        raise NotImplementedError

    def setup(self, stage=None):
        if self.sets is None:
            self.sets = self.datasets()

    @property
    def has_test(self):
        """Whether there is a test split (training_loop.test asks before training)."""
        self.setup()
        return "test" in self.sets

    def _batches(self, split, shuffle, batch_size):
        dataset = self.sets[split]
        return SampleBatches(dataset, batch_size, self.order(len(dataset), shuffle), self.seed,
                             num_workers=self.num_workers, pin_memory=self.pin_memory)


import_all(__name__, __path__)
