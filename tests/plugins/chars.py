"""A character-level model whose vocabulary the data module builds in setup(), as Lightning's docs show for
arguments known only then: the task takes `vocab_size`, which the data module has only after setup().
Named by import path in tests (`training_loop.task = 'chars.NextChar'`)."""
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

TEXT = "the quick brown fox jumps over the lazy dog; " * 40


class Chars(pl.LightningDataModule):
    def __init__(self, context=4, batch_size=32):
        super().__init__()
        self.context, self.batch_size = context, batch_size

    def setup(self, stage=None):
        vocabulary = sorted(set(TEXT))
        self.vocab_size = len(vocabulary)
        codes = torch.tensor([vocabulary.index(c) for c in TEXT])
        windows = codes.unfold(0, self.context + 1, 1)
        cut = len(windows) * 4 // 5
        self.splits = {"train": windows[:cut], "val": windows[cut:]}

    def train_dataloader(self):
        windows = self.splits["train"]
        return DataLoader(TensorDataset(windows[:, :-1], windows[:, -1]), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        windows = self.splits["val"]
        return DataLoader(TensorDataset(windows[:, :-1], windows[:, -1]), batch_size=256)


class NextChar(pl.LightningModule):
    def __init__(self, vocab_size, context=4, width=16):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(vocab_size, width)
        self.head = nn.Linear(context * width, vocab_size)

    def forward(self, x):
        return self.head(self.embed(x).flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self.log("train/batch", float(batch_idx))  # per step only (training_step's default): not a history column
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


class NeedsDepth(NextChar):
    """A task needing a parameter (`depth`) that neither a binding nor the data module gives."""

    def __init__(self, vocab_size, depth, context=4, width=16):
        super().__init__(vocab_size, context, width)
