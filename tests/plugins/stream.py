"""A data module whose training loader reads an IterableDataset (a stream: no index, so no order runkit
could compute): training works and resumes as Lightning does it, and the run says it is approximate."""
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset


class Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        for i in torch.randperm(len(self.y)).tolist():
            yield self.x[i], self.y[i]


class StreamData(pl.LightningDataModule):
    n_features = 4

    def setup(self, stage=None):
        x = torch.randn(320, 4, generator=torch.Generator().manual_seed(0))
        self.x, self.y = x, x.sum(1, keepdim=True)

    def train_dataloader(self):
        return DataLoader(Stream(self.x, self.y), batch_size=32)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=320)
