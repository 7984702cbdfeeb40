"""Tasks: LightningModules registered by name in runkit.training.registry.TASKS, one file each.

A task is a plain LightningModule: `training_step`, `validation_step`, `configure_optimizers`, `self.log`.
Whatever it logs at epoch level becomes a column of history.csv. Two class attributes tell runkit what
"best" means unless the config says (`training_loop.monitor`, `training_loop.mode`): `monitor` (a logged
metric) and `mode` ('min' or 'max'). A parameter with no default is filled from the data module's attribute
of the same name (`input_shape`, `n_classes`, ...).
"""
from runkit.training.plugins import import_all

import_all(__name__, __path__)
