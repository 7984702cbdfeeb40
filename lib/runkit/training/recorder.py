"""RunRecorder: what runkit adds to every Lightning fit so that the run folder tells the whole story and a
killed run continues exactly where it was.

- At each training epoch's end (after the task's own on_train_epoch_end, so everything logged is in): one
  history.csv row of every epoch-level metric, then checkpoints/last.ckpt, and best.ckpt when the monitored
  metric improved.
- Every `every_n_steps` optimizer steps: last.ckpt, holding the data loaders' position, the random
  generators, the epoch's running aggregates (runkit.training.resume) and every torchmetrics Metric's state
  (runkit.training.metric_state), so an epoch interrupted anywhere ends with the figures of an uninterrupted
  one. At an epoch's end it also holds what Lightning does after the checkpoint (the plateau schedulers'
  step, EarlyStopping's stop), which a run resumed from it does first; and the epoch a run resumed into lets
  the plateau schedulers step at its end (Lightning skips it there).
- What it sees keeps the run from resuming exactly (runkit.training.exactness) is said once: train.log and
  `not_exact` in meta.json.
- A stop signal (runkit.training.stopping) ends the step, writes last.ckpt and raises Stopped.
- A NaN or infinite training metric fails the run (when `stop_on_nan`) before a checkpoint could keep it.

It is a Lightning `Checkpoint`, so Lightning calls it after the other callbacks and the LightningModule, and
adds no ModelCheckpoint of its own. Checkpoints are written through Lightning (`trainer.save_checkpoint`),
atomically and off the training loop, each with a digest, the previous sound last.ckpt kept
beside it (runkit.training.checkpoint_io, runkit.rundir.checkpoints).
"""
import math
import os
import time

from pytorch_lightning.callbacks import Checkpoint

from runkit.rundir import runs
from runkit.training import (
    checkpoint_io,
    config,
    exactness,
    internals,
    lightning_package,
    metadata,
    metric_state,
    monitor,
    resume,
    stopping,
    world,
)


class NonFiniteMetric(RuntimeError):
    """A training metric became NaN or infinite."""


class RunRecorder(Checkpoint):
    def __init__(self, run_dir, n_epochs, monitor, mode, every_n_steps=500, stop_on_nan=True, log=print):
        self.run_dir, self.n_epochs, self.monitor, self.mode = run_dir, n_epochs, monitor, mode
        self.every_n_steps, self.stop_on_nan, self.say = every_n_steps, stop_on_nan, log
        self.rows, self.elapsed = [], 0.0
        self._since = None       # when the time now running started counting
        self._in_epoch = False   # a checkpoint saved now is in the middle of an epoch
        self._pending = None     # state to put back before the first step after a resume
        self._saved_step = None
        self._outside = None     # fingerprints of the tensors the module holds outside its state (exactness)
        self._said = []          # what this attempt said keeps it from being exact

    # ---- the state in checkpoints -----------------------------------------------------------------

    def state_dict(self):
        """Called on every process when a checkpoint is saved; rank 0 writes it, so what differs between
        processes (random generators, running sums) is gathered from each, by rank."""
        trainer = self.trainer
        # at an epoch's end, Lightning resets the Metrics the epoch logged as objects after this checkpoint
        reset = () if self._in_epoch else internals.logged_metric_objects(trainer)
        own = {"rng": resume.rng_state(), "metrics": metric_state.save(trainer, trainer.lightning_module, reset)}
        if self._in_epoch:
            own["logged"] = resume.logged_state(trainer)
            own["loaders"] = [loader.state_dict() for loader in _train_loaders(trainer)]
        state = {"rows": self.rows, "elapsed": self._elapsed(), "in_epoch": self._in_epoch,
                 "n_epochs": self.n_epochs, "ranks": _gather(trainer, own)}
        if not self._in_epoch:  # what Lightning does after the epoch's last hook, which a rerun does first
            state.update(plateau=resume.plateau_steps_due(trainer), should_stop=bool(trainer.should_stop))
        return state

    def load_state_dict(self, state):
        if self.trainer.state.fn != "fit":
            return  # testing best.ckpt loads it too: the run's record stays as the fit left it
        self.rows, self.elapsed = list(state["rows"]), state["elapsed"]
        mine = world.share(state, self.trainer.global_rank)  # another world size: runkit.training.world
        self._pending = {"in_epoch": state["in_epoch"], "plateau": state.get("plateau", []),
                         "should_stop": state.get("should_stop", False), "n_epochs": state.get("n_epochs"), **mine}
        if self.trainer.is_global_zero:
            runs.write_history(self.run_dir, self.rows)  # drop rows a killed attempt wrote after this checkpoint

    def setup(self, trainer, pl_module, stage):
        self.trainer = trainer

    # ---- hooks ------------------------------------------------------------------------------------

    def on_fit_start(self, trainer, pl_module):
        ranks = metadata.gather_ranks(trainer)  # every process takes part; rank 0 writes them down
        if trainer.is_global_zero:
            warning = internals.unchecked(lightning_package.active)
            if warning:
                self.say(f"train: warning: {warning}")
            metadata.begin(self.run_dir, trainer.strategy.root_device, ranks, internals_warning=warning,
                           task=pl_module)

    def on_train_start(self, trainer, pl_module):
        """After a resume, before the first batch is drawn (Lightning skips on_train_epoch_start when it
        resumes in the middle of an epoch): the loaders' positions, and the clock. Also config.gin: by now
        every configurable has been called, optimizer included, so the operative config is whole."""
        added = trainer.max_epochs - self.n_epochs  # by a callback, for an extra pass (SWA's BatchNorm epoch)
        if trainer.is_global_zero:
            runs.write_atomic(runs.path(self.run_dir, runs.CONFIG), config.operative_text())
            if added > 0:
                metadata.update(self.run_dir, epochs_added=added)  # the "done" rule counts them (train.py)
            self._outside = {name: exactness.fingerprint(t) for name, t in exactness.held_outside(pl_module).items()}
        if self._pending is None:
            return
        old_epochs = self._pending["n_epochs"]
        if trainer.is_global_zero and not self._pending["in_epoch"] and old_epochs and old_epochs < self.n_epochs:
            self._not_exact(exactness.continued_schedules(trainer, old_epochs, trainer.global_step, self.n_epochs,
                                                          max(added, 0)))
        if self._pending["in_epoch"]:
            self._in_epoch, self._since = True, time.monotonic()
            for loader, position in zip(_train_loaders(trainer), self._pending.get("loaders", []), strict=False):
                loader.load_state_dict(position)
        else:  # resumed at an epoch's end: what Lightning did after that checkpoint, before the next epoch
            resume.take_plateau_steps(trainer, self._pending["plateau"])
            trainer.should_stop = trainer.should_stop or self._pending["should_stop"]
        if trainer.is_global_zero:
            self.say(f"resumed at epoch {trainer.current_epoch + 1}, step {trainer.global_step}")

    @property
    def resumes_mid_epoch(self):
        """Whether the fit resumed in the middle of an epoch and its first step is still to come."""
        return self._pending is not None and self._pending["in_epoch"]

    def on_train_epoch_start(self, trainer, pl_module):
        self._in_epoch, self._since = True, time.monotonic()
        if self._pending is not None and not self._pending["in_epoch"]:
            # after every fit-start hook (a module's `on_train_start` may reset its Metrics), before the module's
            # own epoch start, as the epoch's end left them
            metric_state.restore(trainer, pl_module, self._pending.pop("metrics", {}))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            resume.set_rng_state(pending["rng"])
            if pending["in_epoch"]:
                metric_state.restore(trainer, pl_module, pending.get("metrics", {}))
                resume.restore_logged(trainer, pending.get("logged", {}))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for loader in _train_loaders(trainer):
            loader.consumed = batch_idx + 1
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's end saves next; Lightning would resume from here past validation and the row
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # gradients are being accumulated: a checkpoint now would not hold them
        stop = self._stop_requested(trainer)
        step = trainer.global_step
        if stop or (self.every_n_steps and step % self.every_n_steps == 0 and step != self._saved_step):
            self._check_finite(trainer, {**resume.logged_values(trainer), **_step_loss(outputs)})
            self._save_last(trainer)
        if stop:
            raise stopping.Stopped(stopping.received or stop)

    def on_train_epoch_end(self, trainer, pl_module):
        self._in_epoch = False
        internals.let_plateau_schedulers_step(trainer)  # an epoch resumed into ends as any other (Lightning's skip)
        self.elapsed, self._since = self._elapsed(), None
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step, **epoch_metrics(trainer),
               "lr": _learning_rate(trainer), "time": round(self.elapsed, 3)}
        self._check_finite(trainer, {k: v for k, v in row.items() if k.startswith("train")})
        monitor.check_logged(self.monitor, row, self.rows, trainer.check_val_every_n_epoch)  # before best is chosen
        self.rows.append(row)
        if trainer.is_global_zero:
            runs.write_history(self.run_dir, self.rows)
            self.say(format_row(row, self.n_epochs))
        if best_row(self.rows, self.monitor, self.mode) is row:
            # best.ckpt first, then last.ckpt: killed between the two, the rerun resumes before this epoch,
            # trains it again and writes both; the other way round, best.ckpt would stay an epoch behind
            trainer.save_checkpoint(runs.best_checkpoint_path(self.run_dir), weights_only=False)
            if trainer.is_global_zero:
                checkpoint_io.copy(trainer, runs.best_checkpoint_path(self.run_dir), runs.checkpoint_path(self.run_dir))
            self._saved_step = trainer.global_step
            self._check_outside(trainer)
        else:
            self._save_last(trainer)
        stop = self._stop_requested(trainer)
        if stop and trainer.current_epoch + 1 < self.n_epochs:
            raise stopping.Stopped(stop)

    def teardown(self, trainer, pl_module, stage):
        if stage == "fit" and trainer.is_global_zero and os.path.exists(runs.path(self.run_dir, runs.META)):
            metadata.end(self.run_dir)

    # ---- helpers ----------------------------------------------------------------------------------

    def _elapsed(self):
        return self.elapsed + (time.monotonic() - self._since if self._since is not None else 0.0)

    def _save_last(self, trainer):
        trainer.save_checkpoint(runs.checkpoint_path(self.run_dir), weights_only=False)
        self._saved_step = trainer.global_step
        self._check_outside(trainer)

    def _check_outside(self, trainer):
        if self._outside is not None:
            self._not_exact(exactness.changed_outside(trainer.lightning_module, self._outside))

    def _not_exact(self, lines):
        """Say once what keeps the run from resuming exactly: train.log, and `not_exact` in meta.json."""
        new = [line for line in lines if line not in self._said]
        if not new:
            return
        self._said += new
        for line in new:
            self.say(f"train: resumes approximately: {line}")
        known = (runs.read_json(self.run_dir, runs.META) or {}).get("not_exact") or []
        metadata.update(self.run_dir, not_exact=known + [line for line in new if line not in known])

    def _stop_requested(self, trainer):
        """The stop signal's number, agreed by every process of a distributed run (any of them got one)."""
        signum = stopping.received or 0
        if trainer.world_size > 1:
            import torch
            flag = torch.tensor(signum, device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(flag, reduce_op="max"))
        return signum

    def _check_finite(self, trainer, values):
        if not self.stop_on_nan:
            return
        bad = [name for name, value in values.items() if value is not None and not math.isfinite(value)]
        if bad:
            raise NonFiniteMetric(f"{', '.join(sorted(bad))} became NaN or infinite in epoch "
                                  f"{trainer.current_epoch + 1} (by step {trainer.global_step}); lower "
                                  "optimizer.lr, or set training_loop.stop_on_nan=False")


def _step_loss(outputs):
    """{"loss": this step's training loss} (what training_step returned), or {} for manual optimization."""
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return {"loss": float(loss)} if hasattr(loss, "item") else {}


def _gather(trainer, obj):
    """[obj of rank 0, obj of rank 1, ...]: every process calls it, as it saves a checkpoint."""
    if trainer.world_size == 1:
        return [obj]
    import torch.distributed as dist
    gathered = [None] * trainer.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def _train_loaders(trainer):
    loader = internals.combined_loader(trainer)
    return [dl for dl in (loader.flattened if loader is not None else []) if hasattr(dl, "consumed")]


def epoch_metrics(trainer):
    """Every metric logged at epoch level, by the name it was logged under, as plain floats (not one logged
    per step only: its last batch's value says nothing of the epoch)."""
    metrics = trainer.callback_metrics
    step_only = internals.step_only_metrics(trainer)
    row = {}
    for name, value in sorted(metrics.items()):
        if name in step_only:
            continue
        for suffix in ("_step", "_epoch"):
            if name.endswith(suffix) and name[:-len(suffix)] in metrics:
                break
        else:
            if name not in ("epoch", "step"):
                row[name] = float(value)
    return row


def _learning_rate(trainer):
    return trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None


def best_row(rows, monitor, mode):
    """The row with the best monitored value (the first of equals); missing or NaN values count as worst."""
    sign = 1 if mode == "max" else -1

    def score(row):
        value = row.get(monitor)
        return sign * value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf
    return max(rows, key=score) if rows else None


def format_row(row, n_epochs):
    figures = " ".join(f"{k} {v:.4g}" for k, v in row.items()
                       if k not in ("epoch", "step", "time") and isinstance(v, float))
    return f"epoch {row['epoch']}/{n_epochs} step {row['step']}: {figures} ({row['time']:.1f} s)"
