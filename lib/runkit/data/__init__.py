"""Datasets: one file each, registered by name in runkit.registry.DATASETS.

A dataset function returns a `Dataset` of in-memory tensors. The loop batches them itself (the order is a
function of seed and epoch), which is what makes resuming in the middle of an epoch exact and keeps the data
pipeline out of the way of small models.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from runkit.plugins import import_all

if TYPE_CHECKING:
    import torch


class DataMissing(Exception):
    """The data is not on disk and cannot be fetched; the message names the files expected and where."""


@dataclass
class Dataset:
    train_x: "torch.Tensor"   # float32, normalized: (N, C, H, W) images or (N, features)
    train_y: "torch.Tensor"   # int64 class indices
    val_x: "torch.Tensor"
    val_y: "torch.Tensor"
    n_classes: int
    # augment(x_batch, generator) -> x_batch: vectorized, on x's device, deterministic given the generator
    augment: Optional[Callable] = None

    @property
    def input_shape(self):
        return tuple(self.train_x.shape[1:])


import_all(__name__, __path__)
