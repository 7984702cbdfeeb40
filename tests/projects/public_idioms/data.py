"""Gaussian blobs made in code: a LightningDataModule with plain shuffled DataLoaders (runkit rebuilds the
training one so that it resumes exactly)."""
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class Blobs(pl.LightningDataModule):
    """n_classes overlapping Gaussian blobs in n_features dimensions; the same data set for every seed."""

    def __init__(self, n_features=8, n_classes=3, n_train=96, n_val=48, n_test=48, spread=2.0, batch_size=8):
        super().__init__()
        self.n_features, self.n_classes, self.batch_size = n_features, n_classes, batch_size
        self.sizes, self.spread = {"train": n_train, "val": n_val, "test": n_test}, spread

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(7)
        centers = torch.randn(self.n_classes, self.n_features, generator=generator)
        self.splits = {}
        for name, n in self.sizes.items():
            y = torch.randint(self.n_classes, (n,), generator=generator)
            x = centers[y] + self.spread * torch.randn(n, self.n_features, generator=generator)
            self.splits[name] = TensorDataset(x, y)

    def train_dataloader(self):
        return DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.splits["val"], batch_size=16)

    def test_dataloader(self):
        return DataLoader(self.splits["test"], batch_size=16)
