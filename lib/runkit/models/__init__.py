"""Models: one file each, registered by name in runkit.training.registry.MODELS.

A model is a plain torch.nn.Module built as `Model(input_shape, n_classes, **hyperparameters)` that returns
logits; its hyperparameters bind in gin under its registered name (`cnn.n_filters = 32`).
"""
from runkit.training.plugins import import_all

import_all(__name__, __path__)
