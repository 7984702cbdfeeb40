"""CIFAR-10 from $DATA_DIR/cifar-10-batches-py, read in the archive's own pickle format into memory tensors.

The batches are read here rather than through torchvision.datasets.CIFAR10: that class checks every batch's
md5 (so a tiny test archive cannot pass) and decodes images one by one; here a whole batch is one numpy
reshape, and the 60k images load in about a second. torchvision still does the download.
"""
import fcntl
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runkit.data import DataMissing, TensorData
from runkit.errors import BadInput
from runkit.training.registry import DATA

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
FILES = TRAIN_FILES + ["test_batch", "batches.meta"]
# Per-channel mean and std of the training images (pixel values in [0, 1]).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@DATA.register("cifar10")
class CIFAR10(TensorData):
    """Train on data_batch_1..5 less a held-out validation split of `n_val` images (chosen by `split_seed`);
    test_batch is the test split, used only by the test stage (`training_loop.test = True`): tuning on the
    test set would be a method error. `n_train` keeps the first N training images (quick configs).

    `augment` adds a random 32x32 crop of the 4-pixel-padded image and a random horizontal flip."""

    input_shape, n_classes = (3, 32, 32), 10

    def __init__(self, data_dir=None, download=True, augment=True, n_train=None, n_val=5000, n_test=None,
                 split_seed=0, batch_size=128, val_batch_size=1024, seed=0):
        super().__init__(batch_size, val_batch_size, seed)
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise BadInput(f"cifar10.{name} = {value!r}: give a positive number of images"
                                 f"{', or None for all' if name != 'n_val' else ''}")
        self.data_dir = Path(data_dir or os.environ.get("DATA_DIR") or "data").resolve()
        self.download, self.n_train, self.n_val, self.n_test = download, n_train, n_val, n_test
        self.split_seed = split_seed
        self.augment = crop_and_flip if augment else None

    def prepare_data(self):
        if self.download and not (self.data_dir / FOLDER).exists():
            fetch(self.data_dir)

    def load(self):
        self.prepare_data()
        folder = self.data_dir / FOLDER
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            how = "remove the incomplete folder to download it again" if self.download else \
                "allow downloading (cifar10.download = True) with network access"
            raise DataMissing(f"CIFAR-10 is missing {', '.join(missing)} in {folder}: {how}, or extract {URL} "
                              f"into {self.data_dir}")
        wanted = None if self.n_train is None else self.n_train + self.n_val
        x, y = read_batches([folder / name for name in TRAIN_FILES], wanted)
        if self.n_val >= len(y):
            raise BadInput(f"cifar10.n_val = {self.n_val} leaves no training images of the {len(y)} read: "
                             "lower cifar10.n_val")
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[:self.n_val], order[self.n_val:]
        test = read_batches([folder / "test_batch"], self.n_test)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}


def fetch(data_dir):
    """Download and extract into data_dir; the folder appears whole (extracted aside, then renamed), and a
    lock keeps parallel runs sharing one DATA_DIR from downloading it twice. A download whose md5 is not
    the archive's is named as such (a retry downloads it again) and nothing of it is extracted."""
    from torchvision.datasets.utils import calculate_md5, download_url, extract_archive  # only to download

    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".cifar-10.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (data_dir / FOLDER).exists():
            return
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".cifar-10-") as scratch:
            archive = Path(scratch) / URL.rsplit("/", 1)[-1]
            try:
                download_url(URL, scratch)
            except (OSError, RuntimeError) as error:  # no network
                raise DataMissing(f"CIFAR-10 is not in {data_dir / FOLDER} and downloading {URL} failed "
                                  f"({error}): extract it into {data_dir} by hand, or retry with network "
                                  "access") from None
            md5 = calculate_md5(archive)
            if md5 != MD5:
                raise DataMissing(f"CIFAR-10's {archive.name} as downloaded from {URL} is corrupt (md5 {md5}, "
                                  f"not {MD5}); nothing was extracted: run again to download it again, or "
                                  f"extract a good copy into {data_dir} by hand")
            extract_archive(archive, scratch)
            os.rename(Path(scratch) / FOLDER, data_dir / FOLDER)


def read_pickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")  # the batches are Python 2 pickles; keys come back as bytes


def read_batches(paths, limit):
    """Images as normalized float32 (N, 3, 32, 32) and labels as int64, reading only the files `limit` needs."""
    images, labels, count = [], [], 0
    for path in paths:
        if limit is not None and count >= limit:
            break
        batch = read_pickle(path)
        images.append(batch[b"data"])
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        count += len(labels[-1])
    if limit is not None and limit > count:
        raise BadInput(f"cifar10 has {count} images in {', '.join(p.name for p in paths)} ({paths[0].parent}), "
                         f"fewer than the {limit} asked for: lower cifar10.n_train / n_val")
    x = torch.from_numpy(np.concatenate(images)[:limit].reshape(-1, 3, 32, 32)).float()
    mean, std = torch.tensor(MEAN).view(3, 1, 1) * 255, torch.tensor(STD).view(3, 1, 1) * 255
    return x.sub_(mean).div_(std), torch.from_numpy(np.concatenate(labels)[:limit])


def crop_and_flip(x, generator, pad=4):
    """A random crop of each zero-padded image (zero is the mean colour after normalizing) and a random
    horizontal flip, as one gather on x's device; the random draws come from `generator` alone."""
    n, c, h, w = x.shape
    draw = dict(generator=generator, device=generator.device)
    top = torch.randint(0, 2 * pad + 1, (n, 1), **draw).to(x.device)
    left = torch.randint(0, 2 * pad + 1, (n, 1), **draw).to(x.device)
    flip = (torch.rand((n, 1), **draw) < 0.5).to(x.device)
    rows = top + torch.arange(h, device=x.device)
    cols = left + torch.arange(w, device=x.device)
    cols = torch.where(flip, cols.flip(1), cols)
    padded = F.pad(x, (pad, pad, pad, pad))
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
