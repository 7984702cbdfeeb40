"""A binding that cannot take effect is refused: `optimizer.lr` with a task that configures its own optimizers,
`cnn.n_filters` with the mlp model, `EarlyStopping.patience` without EarlyStopping. gin knows which
configurables the run called (its operative config); by the first training step every one the run uses has
been called (the data module, the task and its model, the callbacks, loggers and Trainer, the optimizers), so
a bound configurable not among them is named then, exit 2, and config.gin holds only what the run used.

Some configurables runkit applies itself from their bindings rather than through gin's call (the `trainer.`
bindings on the `lightning` package, Lightning's callbacks of that package, optimizer and scheduler partials
named by import path): those count as used (config.applied).
"""
from pytorch_lightning import Callback

from runkit.training import config, internals
from runkit.training.errors import ConfigError


class UnusedBinding(ConfigError):
    """Bindings of a configurable the run never called."""


def unused():
    """['optimizer.lr', ...]: the bindings of configurables the run has not called (by gin, or by hand)."""
    called = [(scope, selector) for scope, selector in internals.gin_operative()]
    found = []
    for (scope, selector), params in internals.gin_bindings().items():
        if selector.startswith("gin.") or _applied(selector) or any(
                selector == used and (not scope or scope in used_scope.split("/")) for used_scope, used in called):
            continue
        name = selector.rsplit(".", 1)[-1]
        found += [f"{scope + '/' if scope else ''}{name}.{param}" for param in params]
    return sorted(found)


def _applied(selector):
    return any(selector == name or selector.endswith("." + name) for name in config.applied)


def check(why_not=None):
    """UnusedBinding naming each binding the run never used; `why_not(name)` may say why, for some names."""
    found = unused()
    if found:
        reasons = sorted({why_not(name) for name in found if why_not and why_not(name)})
        raise UnusedBinding(f"{', '.join(found)} cannot take effect: the run never uses "
                            f"{'it' if len(found) == 1 else 'them'}" + (f" ({'; '.join(reasons)})" if reasons else "")
                            + "; drop the binding")


def why_not(name):
    """Why a binding of runkit's optimizer or schedule is unused: the task configures its own optimizers."""
    if name.split("/")[-1].startswith(("optimizer.", "lr_schedule.")):
        return ("the task's configure_optimizers does not return runkit.training.optim.configure(self); "
                "its own optimizers take their settings from its own parameters")
    return None


class RefuseUnused(Callback):
    """Before the first training step: every bound configurable has been called, or the run stops (exit 2)."""

    def on_train_start(self, trainer, pl_module):
        check(why_not)
