"""A project of your own, written without runkit: a LightningModule and a LightningDataModule whose
train_dataloader is a plain torch DataLoader (shuffled, 2 workers, noise drawn in __getitem__).

A config names the classes by import path (`training_loop.task = 'my_project.lit.MyModel'`); nothing here
imports runkit. runkit rebuilds the training DataLoader so that a killed run resumes exactly (docs/own-project.md).
"""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Noisy(Dataset):
    """y = sin(3 x0) + x1 * x2, x ~ N(0, 1); each read adds fresh noise to x (an augmentation)."""

    def __init__(self, x, y, noise):
        self.x, self.y, self.noise = x, y, noise

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        x = self.x[index]
        return x + self.noise * torch.randn_like(x), self.y[index]


class MyData(pl.LightningDataModule):
    """A synthetic regression made in code (no download)."""

    def __init__(self, n_features=4, n_train=2000, n_val=500, n_test=500, noise=0.1, batch_size=64):
        super().__init__()
        self.n_features, self.noise, self.batch_size = n_features, noise, batch_size  # the task's n_features
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(1234)  # the same data set for every seed
        self.splits = {}
        for name, n in self.sizes.items():
            x = torch.randn(n, self.n_features, generator=generator)
            y = torch.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2]
            self.splits[name] = (x, y.unsqueeze(1))

    def train_dataloader(self):
        x, y = self.splits["train"]
        return DataLoader(Noisy(x, y, self.noise), batch_size=self.batch_size, shuffle=True, num_workers=2,
                          persistent_workers=True)

    def val_dataloader(self):
        return DataLoader(Noisy(*self.splits["val"], noise=0.0), batch_size=500)

    def test_dataloader(self):
        return DataLoader(Noisy(*self.splits["test"], noise=0.0), batch_size=500)


class MyModel(pl.LightningModule):
    """A small MLP regressor; "best" is the lowest validation mean absolute error."""

    monitor, mode = "val_mae", "min"  # runkit's defaults for training_loop.monitor and .mode

    def __init__(self, n_features, hidden=64, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_mse", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _evaluate(self, batch, stage):
        x, y = batch
        prediction = self(x)
        self.log_dict({f"{stage}_mse": F.mse_loss(prediction, y), f"{stage}_mae": F.l1_loss(prediction, y)},
                      batch_size=len(x))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)]
