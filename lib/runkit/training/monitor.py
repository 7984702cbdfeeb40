"""What picks `best`: the monitored metric and whether higher or lower is better, and the check that the task
logs it at all. A monitor that is never logged would make every epoch equally bad, so best = epoch 1 without a
word; the run stops instead, at the end of its first validated epoch, before a best checkpoint is chosen.
"""
from runkit.rundir import modes
from runkit.training.errors import ConfigError

DEFAULT = "val_loss"


class MonitorNotLogged(ConfigError):
    """training_loop.monitor names a metric the task does not log; the message lists those it does."""


def choose(monitor, mode, task):
    """(monitor, mode): the bindings, else the task's `monitor`/`mode` attributes, else val_loss; a mode from
    the table of metric names (runkit.rundir.modes) when neither says. ConfigError when no one knows it."""
    task_monitor = getattr(task, "monitor", None)
    monitor = monitor or task_monitor or DEFAULT
    if mode is None and monitor == task_monitor:
        mode = getattr(task, "mode", None)
    mode = mode or modes.mode_of(monitor)
    if mode is None:
        raise ConfigError(f"training_loop.monitor = {monitor!r}: runkit cannot tell whether higher or lower is "
                          "better; bind training_loop.mode = 'max' or 'min'")
    return monitor, mode


def check_logged(monitor, row, rows, check_val_every_n_epoch):
    """MonitorNotLogged when the epoch of `row` ran validation (every `check_val_every_n_epoch` epochs) and
    neither it nor any earlier row (`rows`) holds the monitor."""
    validated = not check_val_every_n_epoch or row["epoch"] % check_val_every_n_epoch == 0
    if not validated or monitor in row or any(monitor in r for r in rows):
        return
    logged = [k for k in row if k not in ("epoch", "step", "time")]
    raise MonitorNotLogged(f"training_loop.monitor = {monitor!r} is not among the metrics the task logged by the "
                           f"end of epoch {row['epoch']} ({', '.join(logged) or 'none'}): bind "
                           "training_loop.monitor to one of them")
