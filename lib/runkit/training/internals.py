"""Every private attribute of Lightning, torchmetrics and gin that runkit reads or sets, in one place, behind
small named functions: exact resume needs what none of them makes public (the fit loop's combined loader, the
epoch loop's running `self.log` aggregates, the logger connector's first-iteration flag, Lightning's hook
callers, a torchmetrics Metric's update count, gin's table of bindings).
A Lightning release may rename any of them, so each access was checked against the versions in CHECKED; a
run on another version warns once at start (`unchecked()`: a line in train.log, `internals_warning` in
meta.json). No other module of runkit touches a private attribute of Lightning or gin
(tests/test_architecture.py greps for it).
"""
from importlib import metadata

from runkit.training import lightning_package

# the versions every function below was checked against, by distribution
CHECKED = {"pytorch_lightning": ("2.6.6",), "lightning": ("2.6.6",), "gin-config": ("0.5.0",),
           "torchmetrics": ("1.9.0",)}


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


def logged_metric_objects(trainer):
    """The torchmetrics Metrics the training epoch logged as objects (`self.log("train/acc", self.train_acc)`):
    Lightning computes and resets them after the epoch's end hooks."""
    return [metric.value for metric in epoch_results(trainer).values() if not metric.is_tensor and not metric.has_reset]


def let_plateau_schedulers_step(trainer):
    """Lightning's fit loop skips the plateau schedulers' epoch step at the end of an epoch it resumed into
    (`on_advance_end`: `if not self.restarting`); it clears the flag right after that epoch anyway."""
    trainer.fit_loop._restarting = False


def call_epoch_start_hooks(trainer):
    """Every callback's and then the LightningModule's `on_train_epoch_start`, as Lightning's fit loop calls them
    (its own callers set the hook's name, which `self.log` in the hook needs), with the loggers' step where it
    was at the epoch's start (LearningRateMonitor logs the epoch's rate at that step)."""
    call = lightning_package.module("trainer.call")
    loop = trainer.fit_loop.epoch_loop
    now = loop._batches_that_stepped
    loop._batches_that_stepped = now - loop.batch_progress.current.completed // trainer.accumulate_grad_batches
    try:
        call._call_callback_hooks(trainer, "on_train_epoch_start")
        call._call_lightning_module_hook(trainer, "on_train_epoch_start")
    finally:
        loop._batches_that_stepped = now


def set_update_count(metric, count):
    """A torchmetrics Metric's count of `update` calls (public to read, `update_count`, not to set); its cached
    `compute()` result is dropped with it."""
    metric._update_count = count
    metric._computed = None


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
        versions = {name: metadata.version(name) for name in (package, "gin-config", "torchmetrics")}
    off = [f"{name} {version}" for name, version in sorted(versions.items()) if version not in CHECKED[name]]
    if not off:
        return None
    checked = ", ".join(f"{name} {' or '.join(CHECKED[name])}" for name in sorted(versions))
    return (f"runkit's exact resume reads private attributes of Lightning, torchmetrics and gin checked against {checked}; "
            f"this is {', '.join(off)}: if a resumed run differs from an uninterrupted one, pin the checked versions")
