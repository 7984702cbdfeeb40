"""Lightning's fit loop skips `on_train_epoch_start` when it resumes in the middle of an epoch, so whatever
those hooks do that no checkpoint holds is missing from the resumed epoch: StochasticWeightAveraging swaps
in its scheduler there, LearningRateMonitor logs the epoch's rate, a module may set an attribute it reads in
every step. EpochStartReplay calls them (every callback's, then the module's) at the first batch after such
a resume, before any other callback's `on_train_batch_start`, and then puts back what the checkpoint holds
that they may have changed a second time: the module's weights and buffers, the optimizers' and the
schedulers' states. RunRecorder restores the rest after it (random generators, torchmetrics states, the
epoch's logged aggregates). It is the first of the run's callbacks.
"""
from pytorch_lightning.callbacks import Callback

from runkit.training import internals

HELD = ("state_dict", "optimizer_states", "lr_schedulers")  # what the hooks may change and the checkpoint holds


class EpochStartReplay(Callback):
    def __init__(self, recorder):
        self.recorder = recorder
        self._held = None  # the checkpoint's states, from loading it until the first batch

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.state.fn == "fit":  # testing best.ckpt loads it too: nothing to resume there
            self._held = {key: checkpoint[key] for key in HELD if key in checkpoint}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        held, self._held = self._held, None
        if held is None or not self.recorder.resumes_mid_epoch:
            return
        internals.call_epoch_start_hooks(trainer)
        if "state_dict" in held:
            trainer.strategy.load_model_state_dict(held, strict=pl_module.strict_loading)
        if "optimizer_states" in held:
            trainer.strategy.load_optimizer_state_dict(held)
        for config, state in zip(trainer.lr_scheduler_configs, held.get("lr_schedulers", [])):
            config.scheduler.load_state_dict(state)
