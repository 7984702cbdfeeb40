"""Lightning's fit loop skips `on_train_epoch_start` when it resumes in the middle of an epoch, so whatever
those hooks do that no checkpoint holds is missing from the resumed epoch: StochasticWeightAveraging swaps
in its scheduler there, LearningRateMonitor logs the epoch's rate, a module may set an attribute it reads in
every step. EpochStartReplay calls them (every callback's, then the module's) at the first batch after such
a resume, before any other callback's `on_train_batch_start`, and then puts back what the checkpoint holds
that they may have changed a second time: the callbacks' states, what the module keeps in
`on_save_checkpoint` (its `on_load_checkpoint` again), its weights and buffers, the optimizers' and the
schedulers' states. RunRecorder restores the rest after it (random generators, torchmetrics states, the
epoch's logged aggregates). It is the first of the run's callbacks.
"""
from pytorch_lightning.callbacks import Callback

from runkit.training import internals


class EpochStartReplay(Callback):
    def __init__(self, recorder):
        self.recorder = recorder
        self._checkpoint = None  # the checkpoint resumed from, until the first batch

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.state.fn == "fit":  # testing best.ckpt loads it too: nothing to resume there
            self._checkpoint = checkpoint

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        checkpoint, self._checkpoint = self._checkpoint, None
        if checkpoint is None or not self.recorder.resumes_mid_epoch:
            return
        internals.call_epoch_start_hooks(trainer)
        saved = checkpoint.get("callbacks", {})
        for callback in trainer.callbacks:
            if callback is not self.recorder and callback.state_key in saved:  # the recorder restores itself later
                callback.load_state_dict(saved[callback.state_key])
        pl_module.on_load_checkpoint(checkpoint)
        trainer.strategy.load_model_state_dict(checkpoint, strict=pl_module.strict_loading)
        if "optimizer_states" in checkpoint:
            trainer.strategy.load_optimizer_state_dict(checkpoint)
        for config, state in zip(trainer.lr_scheduler_configs, checkpoint.get("lr_schedulers", []), strict=False):
            config.scheduler.load_state_dict(state)
