"""Data modules that Lightning itself ships (lightning.pytorch.demos) are examined like a user's own: their
training loader is rebuilt and resumes exactly, and their test_dataloader is a test split."""
import struct

import pytest
from lightning.pytorch import LightningDataModule
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel
from lightning.pytorch.demos.mnist_datamodule import MNISTDataModule

from conftest import without_time
from runkit.rundir import runs
from runkit.training import lightning_package

pytestmark = pytest.mark.usefixtures("one_thread")

def write_mnist(root, train=320, test=64):
    """torchvision's MNIST files (idx format) under root/MNIST/raw: random digits, labels from the pixels."""
    import torch
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(7)
    for split, n in (("train", train), ("t10k", test)):
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        images = (torch.rand(n, 28, 28, generator=g) * 128).to(torch.uint8)
        images[torch.arange(n), labels.long() * 2 + 4, 4:24] = 255  # a bright row per class: learnable
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.numpy().tobytes())


def test_the_demos_data_modules_are_examined_as_a_users_own():
    assert lightning_package.defines(BoringDataModule(), "test_dataloader")
    assert lightning_package.defines(MNISTDataModule(), "train_dataloader")
    assert lightning_package.defines(BoringModel(), "train_dataloader")
    assert not lightning_package.defines(LightningDataModule(), "test_dataloader")


@pytest.mark.slow
def test_the_demos_mnist_data_module_killed_three_times_resumes_exactly_and_tests(tmp_path, monkeypatch, warm):
    """MNISTDataModule (a main-process loader here) by import path, 8 steps an epoch, a checkpoint every 3
    steps, killed with -9 at steps 5, 13 and 21, and `training_loop.test = True`; the task is
    tests/plugins/demo_task.py. Every run forked warm."""
    write_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # the demo looks for ./data whatever its data_dir
    config = tmp_path / "demo.gin"
    config.write_text("training_loop.task = 'demo_task.Digits'\n"
                      "training_loop.data = 'lightning.pytorch.demos.mnist_datamodule.MNISTDataModule'\n"
                      "MNISTDataModule.data_dir = 'data'\nMNISTDataModule.val_split = 64\n"
                      "MNISTDataModule.num_workers = 0\nMNISTDataModule.batch_size = 32\n"
                      "training_loop.n_epochs = 4\ntraining_loop.checkpoint_every_n_steps = 3\n"
                      "training_loop.loggers = []\ntraining_loop.test = True\n")
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    warm.train(reference, config, check=0)
    kills = (5, 13, 21)
    kill = (f"training_loop.callbacks=['kill_at.LightningKillAt']#LightningKillAt.steps={list(kills)}"
            f"#LightningKillAt.marker_dir='{tmp_path}'")
    for step in kills:
        assert warm.train(run, config, "-b", kill).returncode == -9
        assert (tmp_path / f"killed_at_{step}").exists()
    resumed = warm.train(run, config, "-b", kill, check=0)
    assert "resumed at epoch 3, step 18" in resumed.stderr
    assert len(runs.read_history(run)) == 4
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(reference))
    final, expected = (runs.read_json(r, runs.METRICS) for r in (run, reference))
    assert final["test"] == expected["test"] and "test/acc" in final["test"]
    assert runs.read_json(run, runs.META)["data_resume"] == {"loader": "MNISTDataModule.train_dataloader",
                                                            "exact": True}
