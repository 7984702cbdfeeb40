"""Registries: tasks, data, models, callbacks and loggers found by name, so configs select them with a string.

Adding a component is one file and one decorator:

    @TASKS.register("classification")
    class Classification(pl.LightningModule): ...

and a config says `training_loop.task = 'classification'`. Registering also makes the class gin-configurable
under the same name, so its parameters bind as `classification.model = 'cnn'`. Lightning's own callbacks and
loggers are registered by name (`EarlyStopping.patience = 5`; runkit.callbacks, runkit.training.loggers).

A class that is not registered is named by its import path, `training_loop.task = 'my_project.lit.MyModel'`:
it is imported when the config is read, and its parameters bind under its class name (`MyModel.hidden = 64`).
"""
import importlib

import gin

from runkit.errors import BadInput


class UnknownName(BadInput, KeyError):
    """A name no component is registered under; the message lists the known ones."""

    def __str__(self):
        return self.args[0]


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._items = {}
        self._gin_names = {}  # import path -> the class name its parameters bind under

    def register(self, name, denylist=None):
        def add(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = gin.external_configurable(obj, name=name, denylist=denylist)
            return obj
        return add

    def get(self, name):
        if name not in self._items and isinstance(name, str) and "." in name:
            self._import(name)
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(n for n in sorted(self._items) if n not in self._gin_names) or "none"
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {known}, or a class by its import path "
                              "('my_project.lit.MyModel')") from None

    def gin_name(self, name):
        """The name a component's parameters bind under: its registered name, or its class name."""
        return self._gin_names.get(name, name)

    def _import(self, path):
        """Import `package.module.Class` and make it configurable under `Class` (UnknownName if it is not there)."""
        module_name, _, attribute = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise UnknownName(f"{self.kind} {path!r}: cannot import module {module_name!r} ({e}); "
                              "is its package on PYTHONPATH?") from None
        obj = getattr(module, attribute, None)
        if obj is None:
            raise UnknownName(f"{self.kind} {path!r}: module {module_name!r} has no attribute {attribute!r}")
        for name, known in self._items.items():  # registered already (a short name): the same class once
            if obj is known or obj is getattr(known, "__wrapped__", None) or obj in getattr(known, "__mro__", ())[1:2]:
                self._items[path], self._gin_names[path] = known, name
                return
        try:
            self._items[path] = gin.external_configurable(obj, name=attribute)
        except ValueError as e:  # gin has another configurable of that name
            raise UnknownName(f"{self.kind} {path!r}: {e}") from None
        self._gin_names[path] = attribute

    def names(self):
        return sorted(self._items)


def by_path(path):
    """Make `package.module.Name` configurable under its whole path (a config's `@torch.optim.Adam`), once;
    nothing when it does not import (gin then names the reference it does not know)."""
    module_name, _, attribute = path.rpartition(".")
    try:
        gin.get_configurable(path)
        return
    except ValueError:
        pass
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return
    try:
        gin.external_configurable(obj, name=attribute, module=module_name)
    except ValueError:
        pass  # configurable under a name of its own already (a task named by path): gin says which to use


TASKS = Registry("task")
DATA = Registry("data module")
MODELS = Registry("model")
CALLBACKS = Registry("callback")
LOGGERS = Registry("logger")
