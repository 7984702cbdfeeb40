"""What runkit cannot resume exactly, and must say so: a replay buffer of tensors on a plain object the
module holds (as energy-based models keep the samples of their Langevin chains), and a cosine schedule
sized from max_epochs (wrong once the run is continued to more epochs)."""
import pytorch_lightning as pl
import torch
from torch import nn


class Sampler:
    """Keeps the last examples drawn; each step swaps some of them for new ones."""

    def __init__(self, n_features, size=16):
        self.examples = [torch.rand(n_features) for _ in range(size)]

    def sample(self, n):
        for i in torch.randint(len(self.examples), (n,)).tolist():
            self.examples[i] = self.examples[i] * 0.5 + torch.randn_like(self.examples[i]) * 0.5
        return torch.stack(self.examples[:n])


class Buffered(pl.LightningModule):
    def __init__(self, n_features, n_classes, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(n_features, n_classes)
        self.sampler = Sampler(n_features)

    def training_step(self, batch, batch_idx):
        x, y = batch
        negatives = self.sampler.sample(4)
        loss = nn.functional.cross_entropy(self.net(x), y) + self.net(negatives).logsumexp(dim=1).mean() * 0.01
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        return [optimizer], [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.max_epochs)]
