"""A LightningModule in the shape of the most-used Lightning templates: the network, the optimizer and the
scheduler come in as constructor arguments (a built nn.Module and two partials), save_hyperparameters keeps
them, torchmetrics measure, and the metric names have a `/`.

Nothing here imports runkit; my_project/template.gin builds the arguments from bindings (docs/own-project.md).
"""
import pytorch_lightning as pl
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy


class DenseNet(nn.Module):
    """A fully connected classifier of flattened inputs."""

    def __init__(self, input_size=64, hidden=64, n_classes=10):
        super().__init__()
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(input_size, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x):
        return self.model(x)


class Classifier(pl.LightningModule):
    """"Best" is the highest `val/acc`; the scheduler reads `val/loss`."""

    monitor, mode = "val/acc", "max"

    def __init__(self, net, optimizer, scheduler=None, n_classes=10):
        super().__init__()
        self.save_hyperparameters(logger=False)  # net, optimizer and scheduler included
        self.net = net
        self.train_acc, self.val_acc = MulticlassAccuracy(n_classes), MulticlassAccuracy(n_classes)
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x):
        return self.net(x)

    def on_train_start(self):
        self.val_acc_best.reset()

    def _step(self, batch):
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits, y), logits.argmax(dim=1), y

    def training_step(self, batch, batch_idx):
        loss, predicted, y = self._step(batch)
        self.train_loss(loss)
        self.train_acc(predicted, y)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, predicted, y = self._step(batch)
        self.val_loss(loss)
        self.val_acc(predicted, y)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True)

    def on_validation_epoch_end(self):
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute())

    def configure_optimizers(self):
        optimizer = self.hparams.optimizer(params=self.parameters())
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.hparams.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}}
