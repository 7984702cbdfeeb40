"""A project of your own: a LightningModule and a LightningDataModule, registered by name so a gin config
can pick them (`training_loop.task = 'my_model'`, `training_loop.data = 'my_data'`).

The task is a plain LightningModule: nothing in it is runkit's but the decorator. The data module builds
on runkit.data.TensorData, which makes a run resume exactly in the middle of an epoch; any
LightningDataModule would do.
"""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from runkit.data import TensorData
from runkit.training.registry import DATA, TASKS


@DATA.register("my_data")
class MyData(TensorData):
    """A synthetic regression made in code (no download): y = sin(3 x0) + x1 * x2 + noise, x ~ N(0, 1)."""

    def __init__(self, n_features=4, n_train=2000, n_val=500, n_test=500, noise=0.1, batch_size=64,
                 seed=0):
        super().__init__(batch_size=batch_size, seed=seed)
        self.n_features, self.noise = n_features, noise  # the task's `n_features` is filled from here
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}

    def load(self):
        generator = torch.Generator().manual_seed(1234)  # the same data set for every seed
        splits = {}
        for name, n in self.sizes.items():
            x = torch.randn(n, self.n_features, generator=generator)
            y = torch.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2] + self.noise * torch.randn(n, generator=generator)
            splits[name] = (x, y.unsqueeze(1))
        return splits


@TASKS.register("my_model")
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
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
