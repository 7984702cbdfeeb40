"""A LightningModule in the shape of lightning-hydra-template's: the network comes in as an nn.Module and the
optimizer and scheduler as partials, and save_hyperparameters() records all three, so its checkpoints hold
objects that torch's weights_only loader refuses. A config builds them with gin references
(tests/test_checkpoint_trust.py, as examples/my_project/template.gin does). Named by import path with
tests/plugins on PYTHONPATH."""
import pytorch_lightning as pl
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self, n_features, hidden):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.layers(x)


class ObjectsModule(pl.LightningModule):
    monitor, mode = "val/mae", "min"

    def __init__(self, net: nn.Module, optimizer, scheduler):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = net

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train/mse", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _evaluate(self, batch, stage):
        x, y = batch
        self.log(f"{stage}/mae", F.l1_loss(self(x), y), batch_size=len(x))

    def configure_optimizers(self):
        optimizer = self.hparams.optimizer(params=self.parameters())
        scheduler = self.hparams.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

