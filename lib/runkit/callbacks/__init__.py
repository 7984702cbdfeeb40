"""Callbacks: one file each, registered by name in runkit.registry.CALLBACKS and listed in
`training_loop.callbacks`. The loop always runs the ones the run folder needs (ESSENTIAL).

The hook protocol is tiny: a callback overrides any of the methods of `Callback`; each receives the `Loop`
(runkit.loop), whose attributes (epoch, step, model, optimizer, history, ...) it may read. Only overridden
hooks are called, so a callback costs nothing on the hooks it leaves alone.
"""
from runkit.plugins import import_all

ESSENTIAL = ("run_metadata", "heartbeat", "checkpoint", "tensorboard")


class Callback:
    def on_fit_start(self, loop):
        """Before the first step of this attempt (after a resume restored the state)."""

    def on_step_start(self, loop):
        """Before each optimizer step (hot path: keep it cheap, no device syncs)."""

    def on_step_end(self, loop):
        """After each optimizer step (hot path); loop.step counts steps done."""

    def on_epoch_end(self, loop, row):
        """After validation, with the epoch's history row already in loop.history."""

    def on_fit_end(self, loop):
        """After the last epoch, before metrics.json and FINISHED."""

    def on_close(self, loop):
        """Always, at the end of the attempt: finished, failed or preempted."""


import_all(__name__, __path__)
