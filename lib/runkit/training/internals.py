"""Every private attribute of Lightning and gin that runkit reads or sets, in one place, behind small named
functions: exact resume needs what neither library makes public (the fit loop's combined loader, the epoch
loop's running `self.log` aggregates, the logger connector's first-iteration flag, gin's table of bindings).
A Lightning release may rename any of them, so each access was checked against the versions in CHECKED; a
run on another version warns once at start (`unchecked()`: a line in train.log, `internals_warning` in
meta.json). No other module of runkit touches a private attribute of Lightning or gin
(tests/test_architecture.py greps for it).
"""
from importlib import metadata

# the versions every function below was checked against, by distribution
CHECKED = {"pytorch_lightning": ("2.6.6",), "lightning": ("2.6.6",), "gin-config": ("0.5.0",)}


def combined_loader(trainer):
    """The fit loop's CombinedLoader of the training loaders (None before Lightning built it)."""
    return trainer.fit_loop._combined_loader


def epoch_results(trainer):
    """The training epoch's ResultCollection: {key: the running aggregate of a `self.log` call}."""
    return trainer.fit_loop.epoch_loop._results


def step_only_metrics(trainer):
    """The names the training epoch logged per step only (`self.log(..., on_step=True, on_epoch=False)`)."""
    return {result.meta.name for result in epoch_results(trainer).values() if not result.meta.on_epoch}


def synced_to_a_group(meta):
    """Whether a logged metric's sync names a process group of its own (runkit does not save those)."""
    return meta.sync._group is not None


def keep_epoch_aggregates(trainer):
    """Lightning empties the epoch's aggregates at an epoch's first batch (by the logger connector's
    first-iteration flag); the first batch after a mid-epoch resume is not one."""
    trainer._logger_connector._first_loop_iter = False


def gin_bindings():
    """{(scope, selector): {param: value}} of what gin holds now (gin has no public listing of bindings)."""
    import gin
    return gin.config._CONFIG


def gin_operative():
    """[(scope, selector)] of every configurable gin has called since the config was parsed."""
    import gin
    return list(gin.config._OPERATIVE_CONFIG)


def unchecked(package, versions=None):
    """A warning for train.log and meta.json when the Lightning package the run trains on (or gin) is a
    version these accesses were not checked against, else None. `versions`: {distribution: version}, the
    installed ones when not given."""
    if versions is None:
        versions = {name: metadata.version(name) for name in (package, "gin-config")}
    off = [f"{name} {version}" for name, version in sorted(versions.items()) if version not in CHECKED[name]]
    if not off:
        return None
    checked = ", ".join(f"{name} {' or '.join(CHECKED[name])}" for name in sorted(versions))
    return (f"runkit's exact resume reads private attributes of Lightning and gin checked against {checked}; "
            f"this is {', '.join(off)}: if a resumed run differs from an uninterrupted one, pin the checked versions")
