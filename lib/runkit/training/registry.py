"""Registries: tasks, data, models, callbacks and loggers found by name, so configs select them with a string.

Adding a component is one file and one decorator:

    @TASKS.register("classification")
    class Classification(pl.LightningModule): ...

and a config says `training_loop.task = 'classification'`. Registering also makes the class gin-configurable
under the same name, so its parameters bind as `classification.model = 'cnn'`. Lightning's own callbacks and
loggers are registered by name (`EarlyStopping.patience = 5`; runkit.callbacks, runkit.training.loggers).
"""
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

    def register(self, name, denylist=None):
        def add(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = gin.external_configurable(obj, name=name, denylist=denylist)
            return obj
        return add

    def get(self, name):
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self):
        return sorted(self._items)


TASKS = Registry("task")
DATA = Registry("data module")
MODELS = Registry("model")
CALLBACKS = Registry("callback")
LOGGERS = Registry("logger")
