"""Classification: a registered model that returns logits, cross-entropy loss, accuracy."""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from runkit.training import optim
from runkit.training.registry import MODELS, TASKS


@TASKS.register("classification")
class Classification(pl.LightningModule):
    """Validation and test log through `self.log` as any task would. Training sums its loss and right
    answers on the device and logs the epoch's means once, at its end: `self.log` on every step costs more
    than a tiny model's whole step (bench/loop.py). The sums travel in checkpoints, so an epoch resumed in
    its middle reports what an uninterrupted one would."""

    monitor, mode = "val_acc", "max"

    def __init__(self, input_shape, n_classes, model="mlp"):
        super().__init__()
        self.net = MODELS.get(model)(input_shape, n_classes)
        self.sums = None  # loss x examples, right answers, examples: this epoch's, on this process

    def forward(self, x):
        return self.net(x)

    def on_train_epoch_start(self):
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        if self.sums is None:
            self.on_train_epoch_start()
        with torch.no_grad():
            self.sums += torch.stack([loss.double() * len(y), (logits.argmax(1) == y).sum().double(),
                                      torch.tensor(float(len(y)), dtype=torch.float64, device=y.device)])
        return loss

    def on_train_epoch_end(self):
        loss, right, seen = self.trainer.strategy.reduce(self.sums, reduce_op="sum").tolist()
        self.log_dict({"train_loss": loss / seen, "train_acc": right / seen}, on_epoch=True)

    def on_save_checkpoint(self, checkpoint):  # every process saves; rank 0 writes: each rank's sums, by rank
        sums = self.sums if self.sums is not None else torch.zeros(3, dtype=torch.float64, device=self.device)
        checkpoint["classification_sums"] = self.all_gather(sums).reshape(-1, 3).cpu()

    def on_load_checkpoint(self, checkpoint):
        saved = checkpoint.get("classification_sums")
        self.sums = None if saved is None else saved.reshape(-1, 3)[self.global_rank].to(self.device)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def _evaluate(self, batch, stage):
        x, y = batch
        logits = self(x)
        self.log_dict({f"{stage}_loss": F.cross_entropy(logits, y),
                       f"{stage}_acc": (logits.argmax(1) == y).float().mean()},
                      on_epoch=True, batch_size=len(y), sync_dist=True)

    def configure_optimizers(self):
        return optim.configure(self)
