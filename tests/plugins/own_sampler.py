"""A data module whose training loader draws its order from a sampler of the user's, one without
`state_dict` (runkit cannot know where it stood): training works and resumes as Lightning does it, and the
run says it is approximate."""
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset


class Reversed(Sampler):
    """Every other epoch backwards: an order only this class knows."""

    def __init__(self, n):
        self.n, self.epoch = n, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        self.epoch += 1
        order = range(self.n)
        return iter(reversed(order) if self.epoch % 2 else order)


class SamplerData(pl.LightningDataModule):
    n_features = 4

    def setup(self, stage=None):
        x = torch.randn(320, 4, generator=torch.Generator().manual_seed(0))
        self.data = TensorDataset(x, x.sum(1, keepdim=True))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=32, sampler=Reversed(len(self.data)))

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=320)
