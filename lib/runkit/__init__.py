"""runkit: the shared library behind the tools (run folders, specs, the training loop, registries).

Importing runkit is cheap; torch and Lightning load only when training code is imported.
"""
from runkit.rundir.runs import load_C, load_H

__all__ = ["load_C", "load_H"]
