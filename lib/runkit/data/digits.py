"""scikit-learn's 8x8 handwritten digits: 1797 images that ship with scikit-learn, so it works offline."""
import torch

from runkit.data import TensorData
from runkit.training.registry import DATA


@DATA.register("digits")
class Digits(TensorData):
    """Images (1, 8, 8) scaled to zero mean and unit variance; the validation split is fixed by split_seed."""

    input_shape, n_classes = (1, 8, 8), 10

    def __init__(self, batch_size=32, val_batch_size=1024, val_fraction=0.2, split_seed=0, seed=0):
        super().__init__(batch_size, val_batch_size, seed)
        if not 0 < val_fraction < 1:
            raise ValueError(f"digits.val_fraction = {val_fraction!r}: give a fraction between 0 and 1")
        self.val_fraction, self.split_seed = val_fraction, split_seed

    def load(self):
        images, target = read_digits()
        x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(target, dtype=torch.int64)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = int(len(y) * self.val_fraction)
        val, train = order[:n_val], order[n_val:]
        mean, std = x[train].mean(), x[train].std()
        x = (x - mean) / std
        return {"train": (x[train], y[train]), "val": (x[val], y[val])}


def read_digits():
    """(images, targets) as sklearn.datasets.load_digits gives them, read from scikit-learn's own file without
    importing scikit-learn: its datasets package loads pandas and much of SciPy, about 0.9 s of every cold
    run (docs/warm-runs.md). Where the file is not where scikit-learn 1.x keeps it, load_digits reads it."""
    import gzip
    import importlib.util
    import os

    import numpy as np
    found = importlib.util.find_spec("sklearn")
    path = os.path.join(found.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if found else ""
    if not os.path.isfile(path):
        from sklearn.datasets import load_digits
        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)
