"""LightningModules written here in the idioms of the most-used public Lightning code (torchmetrics metrics,
ReduceLROnPlateau on a validation metric, `/` in metric names, manual optimization, StochasticWeightAveraging),
on a tiny data set made in code: tests/test_real_lightning_code.py trains them by import path, on
pytorch_lightning and (a copy with one import changed) on lightning."""
