"""Classification: a registered model that returns logits, cross-entropy loss, accuracy."""
import pytorch_lightning as pl
import torch.nn.functional as F

from runkit import optim
from runkit.registry import MODELS, TASKS


@TASKS.register("classification")
class Classification(pl.LightningModule):
    monitor, mode = "val_acc", "max"

    def __init__(self, input_shape, n_classes, model="mlp"):
        super().__init__()
        self.net = MODELS.get(model)(input_shape, n_classes)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.argmax(1) == y).float().mean()
        self.log_dict({f"{stage}_loss": loss, f"{stage}_acc": accuracy}, on_step=False, on_epoch=True,
                      batch_size=len(y), sync_dist=True)
        return loss

    def configure_optimizers(self):
        return optim.configure(self)
