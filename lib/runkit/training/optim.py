"""The optimizer and the learning-rate schedule, chosen and tuned from gin:
`optimizer.name = 'sgd'`, `optimizer.lr = 0.1`, `lr_schedule.name = 'cosine'`, `lr_schedule.warmup_steps = 390`.

A task's `configure_optimizers` returns `configure(self)`. The schedule steps once per optimizer step and
is a function of the step and the run's total steps (from training_loop.n_epochs), so it resumes exactly;
continuing a finished run to more epochs stretches a cosine schedule from that point on (docs/run-folder.md).
"""
import math

import gin
import torch

from runkit.training.errors import ConfigError

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SCHEDULES = ("constant", "cosine")


@gin.configurable
def optimizer(parameters, name="sgd", lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False):
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer.name {name!r}; known: {', '.join(OPTIMIZERS)}")
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov)
    return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay)


@gin.configurable
def lr_schedule(name="constant", warmup_steps=0, min_factor=0.0):
    """factor(step, total_steps) -> the multiplier of the base rate; linear warm-up, then constant or cosine."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown lr_schedule.name {name!r}; known: {', '.join(SCHEDULES)}")

    def factor(step, total):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def configure(module):
    """What LightningModule.configure_optimizers returns: the optimizer, and the schedule stepped per step."""
    opt = optimizer(module.parameters())
    factor, total = lr_schedule(), module.trainer.estimated_stepping_batches
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: factor(step, total))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
