"""Callbacks: any Lightning callback, chosen by name in `training_loop.callbacks`.

Lightning's own callbacks are registered under their class names, so a config can say

    training_loop.callbacks = ['EarlyStopping', 'LearningRateMonitor']
    EarlyStopping.monitor = 'val_loss'

A callback of your own is a `pytorch_lightning.Callback` in a file here (or in your project, imported by a
config line `import my_project.callbacks`) registered with `@CALLBACKS.register("name")`. runkit adds its
own RunRecorder (history, checkpoints, exact resume) to every run; it is not listed.
"""
import pytorch_lightning.callbacks as lightning_callbacks

from runkit.training.plugins import import_all
from runkit.training.registry import CALLBACKS

# The kit writes the run's checkpoints itself (checkpoints/last.ckpt and best.ckpt); a ModelCheckpoint of
# the user's may still keep extra top-k files, in the run folder by default.
for _name in lightning_callbacks.__all__:
    _cls = getattr(lightning_callbacks, _name)
    if isinstance(_cls, type) and issubclass(_cls, lightning_callbacks.Callback) and _name != "Callback":
        CALLBACKS.register(_name)(_cls)

import_all(__name__, __path__)
