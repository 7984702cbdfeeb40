"""Registries: models, datasets and callbacks found by name, so configs select them with a string.

Adding a model is one file and one decorator:

    @MODELS.register("cnn")
    class CNN(nn.Module): ...

and a config says `training_loop.model = 'cnn'`. Registering also makes the class gin-configurable under
the same name, so its parameters bind as `cnn.n_filters = 32`.
"""
import gin


class UnknownName(KeyError):
    """A name no component is registered under; the message lists the known ones."""

    def __str__(self):
        return self.args[0]


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, name):
        def add(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = gin.external_configurable(obj, name=name)
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


MODELS = Registry("model")
DATASETS = Registry("dataset")
CALLBACKS = Registry("callback")
