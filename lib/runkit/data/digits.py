"""scikit-learn's 8x8 handwritten digits: 1797 images that ship with scikit-learn, so it works offline."""
import torch

from runkit.data import Dataset
from runkit.registry import DATASETS


@DATASETS.register("digits")
def digits(val_fraction=0.2, split_seed=0):
    """Images (1, 8, 8) scaled to zero mean and unit variance; the split is fixed by split_seed."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(split_seed))
    n_val = int(len(y) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return Dataset(x[train], y[train], x[val], y[val], n_classes=10)
