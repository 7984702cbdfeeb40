"""Which Lightning a run trains on: `pytorch_lightning`, or the unified `lightning` package (`lightning.pytorch`,
what Lightning's own docs use today). The two are the same code under two names, but neither's Trainer takes
the other's LightningModule, callbacks or plug-ins. A run uses the package its task derives from (`use`,
once per attempt, before anything is built): runkit's own callbacks and plug-ins are made instances of that
package's classes too (`adapt`), and Lightning's callbacks and loggers named in a config come from it.
A data module or callback of the other package is bad config (`check`).
"""
import importlib

from runkit.training.errors import ConfigError

PYTORCH_LIGHTNING, LIGHTNING = "pytorch_lightning", "lightning"
# each package's prefixes for (the trainer's package, fabric)
PREFIXES = {PYTORCH_LIGHTNING: ("pytorch_lightning", "lightning_fabric"),
            LIGHTNING: ("lightning.pytorch", "lightning.fabric")}

active = PYTORCH_LIGHTNING  # the package of the run being built in this process


def of(cls):
    """The Lightning package a class derives from, or None (a plain Python class, a function)."""
    for base in getattr(cls, "__mro__", ()):
        module = base.__module__
        for package, (trainer_prefix, fabric_prefix) in PREFIXES.items():
            if module.startswith((trainer_prefix + ".", fabric_prefix + ".")):
                return package
    return None


def use(task_class):
    """Train on the package the task derives from (pytorch_lightning for one that derives from neither)."""
    global active
    active = of(task_class) or PYTORCH_LIGHTNING
    return active


def module(name=""):
    """The active package's module: module("loggers") is pytorch_lightning.loggers or lightning.pytorch.loggers."""
    root = PREFIXES[active][0]
    return importlib.import_module(f"{root}.{name}" if name else root)


def fabric(name):
    """The active package's fabric module: fabric("plugins.environments")."""
    return importlib.import_module(f"{PREFIXES[active][1]}.{name}")


def version():
    return importlib.import_module(PREFIXES[active][0]).__version__


def counterpart(cls):
    """The active package's class of the same name as a Lightning class of either package."""
    source = of_module(cls)
    if source is None or source == active:
        return cls
    name = cls.__module__
    for old, new in zip(PREFIXES[source], PREFIXES[active], strict=True):
        if name == old or name.startswith(old + "."):
            return getattr(importlib.import_module(new + name[len(old):]), cls.__qualname__)
    return cls


_adapted = {}


def adapt(cls):
    """runkit's class (written on pytorch_lightning) as a subclass of the active package's base class too,
    so that the active Trainer's isinstance checks (Callback, Checkpoint, CheckpointIO) accept it."""
    if active == PYTORCH_LIGHTNING:
        return cls
    if cls not in _adapted:
        base = next(b for b in cls.__mro__ if of_module(b) == PYTORCH_LIGHTNING)
        _adapted[cls] = type(cls.__name__, (cls, counterpart(base)), {"__module__": cls.__module__})
    return _adapted[cls]


def check(kind, name, cls):
    """A component of the other package is bad config: its Trainer would refuse it."""
    package = of(cls)
    if package is not None and package != active:
        raise ConfigError(f"{kind} {name!r} is written on {package}, but the task is written on {active}: a run "
                          f"trains on one package; write them both on `import {PREFIXES[active][0]}`")


def defines(obj, method):
    """Whether the object's own class (not Lightning's base classes, of either package) defines `method`."""
    return obj is not None and any(method in vars(cls) for cls in type(obj).__mro__ if not is_base(cls))


def is_base(cls):
    """One of Lightning's base classes, of either package: LightningModule, LightningDataModule, their hooks
    and mixins (`<package>.core`), or fabric's. A class Lightning ships built on them (the demos'
    MNISTDataModule, BoringDataModule) is not: its methods are examined as a user's own."""
    return cls.__module__.startswith(tuple(f"{trainer}.core." for trainer, _ in PREFIXES.values()) +
                                     tuple(f"{fabric}." for _, fabric in PREFIXES.values()))


def of_module(cls):
    """The package a class itself is defined in (not what it derives from), or None."""
    for package, prefixes in PREFIXES.items():
        if cls.__module__.startswith(tuple(p + "." for p in prefixes)):
            return package
    return None
