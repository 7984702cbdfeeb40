"""A classifier trained with StochasticWeightAveraging and LearningRateMonitor in the callbacks (named in the
config), Adam with an epoch StepLR; `on_train_epoch_start` records the epoch's starting rate, as modules that
anneal something per epoch do. With `batch_norm=True` SWA adds an epoch at the end (BatchNorm statistics)."""
import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification.accuracy import Accuracy


class Averaged(pl.LightningModule):
    def __init__(self, n_features, n_classes, hidden=32, lr=0.02, batch_norm=False):
        super().__init__()
        self.save_hyperparameters()
        norm = [nn.BatchNorm1d(hidden)] if batch_norm else []
        self.net = nn.Sequential(nn.Linear(n_features, hidden), *norm, nn.ReLU(), nn.Linear(hidden, n_classes))
        self.train_loss, self.val_acc = MeanMetric(), Accuracy(task="multiclass", num_classes=n_classes)
        self.epoch_lr = None

    def on_train_epoch_start(self):
        self.epoch_lr = self.trainer.optimizers[0].param_groups[0]["lr"]

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/epoch_lr", self.epoch_lr, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.val_acc(logits, y)
        self.log("val/loss", nn.functional.cross_entropy(logits, y), on_epoch=True)
        self.log("val/acc", self.val_acc, on_epoch=True)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)]
