"""An autoencoder: reconstruct the input through a narrow code; mean squared error is both loss and metric.

Not a classifier: it shows that history.csv, metrics.json, collect and plot follow what a task logs
(`val_mse`, monitored with mode 'min').
"""
import math

import pytorch_lightning as pl
import torch.nn.functional as F
from torch import nn

from runkit.training import optim
from runkit.training.registry import TASKS


@TASKS.register("autoencoder")
class Autoencoder(pl.LightningModule):
    monitor, mode = "val_mse", "min"

    def __init__(self, input_shape, code=8, hidden=64, noise=0.0):
        super().__init__()
        width = math.prod(input_shape)
        self.input_shape, self.noise = tuple(input_shape), noise
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def forward(self, x):
        return self.decoder(self.encoder(x)).view(-1, *self.input_shape)

    def training_step(self, batch, batch_idx):
        x = batch[0]
        noisy = x + self.noise * x.new_empty(x.shape).normal_() if self.noise else x  # a denoising autoencoder
        loss = F.mse_loss(self(noisy), x)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x = batch[0]
        mse = F.mse_loss(self(x), x)
        self.log_dict({"val_loss": mse, "val_mse": mse}, on_epoch=True, batch_size=len(x), sync_dist=True)

    def configure_optimizers(self):
        return optim.configure(self)
