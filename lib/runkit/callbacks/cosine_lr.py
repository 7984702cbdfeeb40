"""Cosine learning-rate decay with linear warm-up, per step.

The rate is a function of the step alone, so it needs no state in the checkpoint and resumes exactly.
"""
import math

from runkit.callbacks import Callback
from runkit.registry import CALLBACKS


@CALLBACKS.register("cosine_lr")
class CosineLR(Callback):
    def __init__(self, warmup_steps=0, min_factor=0.0):
        self.warmup_steps = warmup_steps
        self.min_factor = min_factor

    def on_fit_start(self, loop):
        self.total = max(1, loop.total_steps)
        self.base = [group.get("initial_lr", group["lr"]) for group in loop.optimizer.param_groups]
        for group, base in zip(loop.optimizer.param_groups, self.base):
            group["initial_lr"] = base

    def on_step_start(self, loop):
        factor = self.factor(loop.step)
        for group, base in zip(loop.optimizer.param_groups, self.base):
            group["lr"] = base * factor

    def factor(self, step):
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total - self.warmup_steps))
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
