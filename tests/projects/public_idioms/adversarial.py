"""Manual optimization with two optimizers, shaped like Lightning's GAN example: a generator maps noise to
points like the data's, a discriminator tells them apart; each has its own Adam and its own StepLR, which
the module steps itself at each epoch's end."""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAccuracy


class Adversarial(pl.LightningModule):
    def __init__(self, n_features, latent=4, hidden=16, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_features))
        self.discriminator = nn.Sequential(nn.Linear(n_features, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.g_loss, self.d_loss = MeanMetric(), MeanMetric()
        self.val_d_acc = BinaryAccuracy()

    def forward(self, z):
        return self.generator(z)

    def training_step(self, batch, batch_idx):
        real, _ = batch
        g_opt, d_opt = self.optimizers()
        z = torch.randn(len(real), self.hparams.latent, device=self.device)

        self.toggle_optimizer(g_opt)
        fake = self(z)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(fake), torch.ones(len(real), 1))
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.untoggle_optimizer(g_opt)

        self.toggle_optimizer(d_opt)
        logits = self.discriminator(torch.cat([real, fake.detach()]))
        truth = torch.cat([torch.ones(len(real), 1), torch.zeros(len(real), 1)])
        d_loss = F.binary_cross_entropy_with_logits(logits, truth)
        d_opt.zero_grad()
        self.manual_backward(d_loss)
        d_opt.step()
        self.untoggle_optimizer(d_opt)

        self.g_loss(g_loss)
        self.d_loss(d_loss)
        self.log_dict({"train/g_loss": self.g_loss, "train/d_loss": self.d_loss}, on_step=False, on_epoch=True)

    def on_train_epoch_end(self):
        for scheduler in self.lr_schedulers():
            scheduler.step()

    def validation_step(self, batch, batch_idx):
        real, _ = batch
        fake = self(torch.randn(len(real), self.hparams.latent, device=self.device))
        logits = self.discriminator(torch.cat([real, fake]))
        self.val_d_acc(logits.squeeze(1), torch.cat([torch.ones(len(real)), torch.zeros(len(real))]).long())
        self.log("val/d_acc", self.val_d_acc, on_epoch=True)

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=(0.5, 0.999))
        schedules = [torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) for opt in (g_opt, d_opt)]
        return [g_opt, d_opt], schedules
