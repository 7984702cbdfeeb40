"""Callbacks: one file each, registered by name in runkit.registry.CALLBACKS and listed in
`training_loop.callbacks`."""
from runkit.plugins import import_all

import_all(__name__, __path__)
