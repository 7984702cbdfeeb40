"""The optimizer, chosen and tuned from gin: `optimizer.name = 'sgd'`, `optimizer.lr = 0.1`."""
import gin
import torch

from runkit.config import ConfigError

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@gin.configurable
def optimizer(parameters, name="sgd", lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False):
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer.name {name!r}; known: {', '.join(OPTIMIZERS)}")
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov)
    return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay)
