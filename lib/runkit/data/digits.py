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
        from sklearn.datasets import load_digits
        bunch = load_digits()
        x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(bunch.target, dtype=torch.int64)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = int(len(y) * self.val_fraction)
        val, train = order[:n_val], order[n_val:]
        mean, std = x[train].mean(), x[train].std()
        x = (x - mean) / std
        return {"train": (x[train], y[train]), "val": (x[val], y[val])}
