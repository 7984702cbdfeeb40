"""Every process of a run hashes strings with one seed (meta.json's hash_seed): a character model whose
vocabulary is `list(set(text))`, built in setup(), gives the same run twice, and a killed run resumed from a
shell with another PYTHONHASHSEED ends equal to the uninterrupted one."""
import os

import pytest

from conftest import tool, without_time
from runkit.rundir import runs

pytestmark = pytest.mark.usefixtures("one_thread")

PROJECT = '''
"""Next-character prediction on a made-up text, the vocabulary in the order `set` gives it."""
import random

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Windows(Dataset):
    def __init__(self, ids, context):
        self.ids, self.context = ids, context

    def __len__(self):
        return len(self.ids) - self.context

    def __getitem__(self, i):
        return self.ids[i:i + self.context], self.ids[i + self.context]


class Chars(pl.LightningDataModule):
    def __init__(self, length=2400, context=8, batch_size=32):
        super().__init__()
        self.length, self.context, self.batch_size = length, context, batch_size

    def setup(self, stage=None):
        words = ["lightning", "module", "epoch", "vocabulary", "resume", "exact", "batch", "hash"]
        draw = random.Random(0)
        text = " ".join(draw.choice(words) for _ in range(self.length // 6))
        self.vocab = list(set(text))  # the order of a set of strings: the process's hash seed decides it
        ids = torch.tensor([self.vocab.index(c) for c in text])
        cut = int(0.9 * len(ids))
        self.train_set, self.val_set = Windows(ids[:cut], self.context), Windows(ids[cut:], self.context)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)


class CharModel(pl.LightningModule):
    monitor, mode = "val/loss", "min"

    def __init__(self, n_tokens=32, width=16, context=8, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(n_tokens, width)
        self.head = nn.Linear(width * context, n_tokens)

    def forward(self, x):
        return self.head(self.embed(x).flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
'''


@pytest.mark.slow
def test_a_vocabulary_from_a_set_gives_the_same_run_twice_and_resumes_exactly(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "chars.py").write_text(PROJECT)
    plugins = os.path.join(os.path.dirname(__file__), "plugins")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "code"), plugins, os.environ["PYTHONPATH"]]))
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    config = tmp_path / "chars.gin"
    config.write_text("training_loop.task = 'chars.CharModel'\ntraining_loop.data = 'chars.Chars'\n"
                      "training_loop.n_epochs = 2\ntraining_loop.checkpoint_every_n_steps = 5\n"
                      "training_loop.loggers = []\n")
    first, second, killed = tmp_path / "first", tmp_path / "second", tmp_path / "killed"
    tool("train", first, config, check=0)
    tool("train", second, config, check=0)
    assert without_time(runs.read_history(second)) == without_time(runs.read_history(first))
    assert runs.read_json(first, runs.META)["hash_seed"] == 0

    kill = f"training_loop.callbacks=['kill_at.KillAt']#KillAt.steps=[92]#KillAt.marker_dir='{tmp_path}'"
    assert tool("train", killed, config, "-b", kill).returncode == -9
    resumed = tool("train", killed, config, "-b", kill, check=0, env={**os.environ, "PYTHONHASHSEED": "5"})
    assert "resumed at epoch 2, step 90" in resumed.stderr  # 82 steps an epoch
    assert without_time(runs.read_history(killed)) == without_time(runs.read_history(first))
    assert runs.read_json(killed, runs.META)["hash_seed"] == 0  # the run's, not the resuming shell's
