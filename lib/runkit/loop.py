"""The training loop: plain PyTorch steps on in-memory tensors, with Lightning Fabric for the device,
precision and distributed strategy. Read it top to bottom: settings, setup, one step, one epoch, checkpoints.

Why it resumes exactly: the order of the data is a function of (seed, epoch), augmentation's randomness a
function of (seed, epoch, step), and a checkpoint holds the model, the optimizer, the torch RNG states, the
position in the data (epoch, batch), the epoch's per-step losses and the history. Restoring all of that puts
the loop where it was, so the rest of the run is the one an uninterrupted run would have had.
"""
import hashlib
import io
import os
import sys
import time
import warnings
from dataclasses import dataclass

import gin
import torch
import torch.nn.functional as F
from lightning_fabric import Fabric
from lightning_fabric.strategies import SingleDeviceStrategy

from runkit import runs
from runkit.callbacks import ESSENTIAL, Callback
from runkit.optim import optimizer
from runkit.registry import CALLBACKS, DATASETS, MODELS


@gin.configurable
@dataclass
class training_loop:  # noqa: N801 - the gin name configs use: `training_loop.n_epochs = 5`
    """Everything the loop needs to know, bound from gin."""
    model: str = None
    dataset: str = None
    n_epochs: int = 1
    batch_size: int = 128
    seed: int = 0
    callbacks: tuple = ()                # extra callbacks by name; the essential ones always run
    limit_train_batches: int = None      # at most this many batches per epoch (quick demos, smoke tests)
    val_batch_size: int = 1024
    stop_on_nan: bool = True             # a NaN/inf training loss fails the run (checked at checkpoints)
    deterministic: bool = True           # torch.use_deterministic_algorithms: bitwise-repeatable runs
    accelerator: str = "auto"            # Fabric's: cpu, cuda, mps, auto
    devices: object = 1
    precision: str = "32-true"           # Fabric's: 32-true, bf16-mixed, 16-mixed, ...
    strategy: str = "auto"               # Fabric's: auto, ddp, ...

    def components(self):
        """The registered model, dataset and callbacks this config names (UnknownName if one is not)."""
        for field in ("model", "dataset"):
            if not getattr(self, field):
                raise ValueError(f"training_loop.{field} is not set: bind it in a config file or with "
                                 f"-b \"training_loop.{field}='name'\"")
        names = list(ESSENTIAL) + [n for n in self.callbacks if n not in ESSENTIAL]
        return MODELS.get(self.model), DATASETS.get(self.dataset), [CALLBACKS.get(n) for n in names]


FULL_PRECISION = ("32-true", "32", "64-true", "64")


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


class Loop:
    """One attempt at a run: builds everything from the settings, resumes, trains, checkpoints."""

    def __init__(self, settings, run_dir, log):
        self.settings, self.run_dir, self.log = settings, run_dir, log
        model_class, dataset_fn, callback_classes = settings.components()
        if settings.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
            torch.use_deterministic_algorithms(True, warn_only=True)
        warnings.filterwarnings("ignore", message=".*`srun` command is available")  # we are no srun job
        self.fabric = Fabric(accelerator=settings.accelerator, devices=settings.devices,
                             precision=settings.precision, strategy=settings.strategy)
        self.is_writer = self.fabric.is_global_zero
        self.data = dataset_fn()
        torch.manual_seed(settings.seed)
        self.module = model_class(self.data.input_shape, self.data.n_classes)
        self.optimizer = optimizer(self.module.parameters())
        self.callbacks = [cls() for cls in callback_classes]
        self.stop_signal = None  # set by a signal handler: finish the step, checkpoint, stop
        self._tensorboard = None

    # ---- setup ---------------------------------------------------------------------------------

    def start(self):
        """Move to the device and restore the last checkpoint if there is one."""
        fabric = self.fabric
        fabric.launch()
        self.model, self.step_optimizer = fabric.setup(self.module, self.optimizer)
        self.backward = fabric.backward
        if isinstance(fabric.strategy, SingleDeviceStrategy) and str(self.settings.precision) in FULL_PRECISION:
            # Fabric's wrappers only convert precision and sync gradients: on one device at full precision
            # they add ~25% to a small model's step (bench/loop.py), so call the module and optimizer directly.
            self.model, self.step_optimizer, self.backward = self.module, self.optimizer, torch.Tensor.backward
        d = self.data
        self.train_x, self.train_y, self.val_x, self.val_y = (
            fabric.to_device(t) for t in (d.train_x, d.train_y, d.val_x, d.val_y))
        n_batches = -(-len(self.train_y) // (self.settings.batch_size * fabric.world_size))
        limit = self.settings.limit_train_batches
        self.batches_per_epoch = min(n_batches, limit) if limit else n_batches
        self.total_steps = self.batches_per_epoch * self.settings.n_epochs
        self.epoch, self.batch, self.step, self.elapsed, self.history = 0, 0, 0, 0.0, []
        self._reset_sums()
        if os.path.exists(runs.checkpoint_path(self.run_dir)):
            self.load_checkpoint()
            self.log(f"resumed from epoch {self.epoch} batch {self.batch} (step {self.step})")
        self._hooks = {name: [getattr(c, name) for c in self.callbacks
                              if getattr(type(c), name) is not getattr(Callback, name)]
                       for name in ("on_fit_start", "on_step_start", "on_step_end", "on_epoch_end",
                                    "on_fit_end", "on_close")}

    def _reset_sums(self):
        """The epoch's running figures: per-step losses and batch sizes, and the count of right answers."""
        self.losses, self.sizes, self.predictions = [], [], []
        self.correct = torch.zeros((), device=self.fabric.device, dtype=torch.long)

    def _epoch_figures(self):
        """(per-step losses, batch sizes, right answers so far); counting right answers empties the queue.

        Losses stay one per step, so the epoch's loss is summed in the same order however often the run
        was interrupted: a resumed run reports bitwise the same train_loss.
        """
        if self.predictions:
            self.correct = self.correct + sum((p == y).sum() for p, y in self.predictions)
            self.predictions = []
        losses = torch.stack(self.losses) if self.losses else torch.zeros(0, device=self.fabric.device)
        return losses, torch.tensor(self.sizes, dtype=torch.float64, device=self.fabric.device), self.correct

    # ---- training ------------------------------------------------------------------------------

    def fit(self):
        """Train to n_epochs. Returns False if a signal stopped it early (after a checkpoint)."""
        self._call("on_fit_start")
        try:
            while self.epoch < self.settings.n_epochs:
                if not self.train_epoch():
                    return False
                self.end_epoch()
            self._call("on_fit_end")
            return True
        finally:
            self._call("on_close")
            if self._tensorboard:
                self._tensorboard.close()

    def train_epoch(self):
        """Run the epoch's remaining batches; False if stopped by a signal."""
        s, fabric, model, optimizer, backward = self.settings, self.fabric, self.model, self.step_optimizer, self.backward
        order = self.order(self.epoch)
        size = len(order) // fabric.world_size
        order = order[fabric.global_rank * size:(fabric.global_rank + 1) * size]  # this rank's share
        step_start, step_end = self._hooks["on_step_start"], self._hooks["on_step_end"]
        started = time.monotonic()
        progress = Progress(self) if self.is_writer and sys.stderr.isatty() else None
        while self.batch < self.batches_per_epoch:
            index = order[self.batch * s.batch_size:(self.batch + 1) * s.batch_size]
            x, y = self.train_x[index], self.train_y[index]
            if self.data.augment is not None:
                x = self.data.augment(x, generator(s.seed, self.epoch, self.step))
            for hook in step_start:
                hook(self)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            backward(loss)
            optimizer.step()
            # kept on the device and summed at checkpoints and epoch ends: no sync per step
            self.losses.append(loss.detach())
            self.sizes.append(len(y))
            self.predictions.append((logits.argmax(1), y))
            self.step += 1
            self.batch += 1
            for hook in step_end:
                hook(self)
            if progress:
                progress.draw()
            if self.stop_signal:
                self.elapsed += time.monotonic() - started
                self.save_checkpoint()
                return False
        self.elapsed += time.monotonic() - started
        return True

    def end_epoch(self):
        """Validate, add the history row, rewrite history.csv, then the epoch-end hooks (checkpoint)."""
        losses, sizes, correct = self._check_finite()
        sums = torch.stack([(losses.double() * sizes).sum(), correct.double(), sizes.sum()])
        loss_sum, correct, seen = self.fabric.all_reduce(sums, reduce_op="sum").tolist()
        val_loss, val_acc = self.validate()
        row = {"epoch": self.epoch + 1, "step": self.step, "train_loss": loss_sum / seen,
               "train_acc": correct / seen, "val_loss": val_loss, "val_acc": val_acc,
               "lr": self.optimizer.param_groups[0]["lr"], "time": round(self.elapsed, 3)}
        self.history.append(row)
        self.epoch, self.batch = self.epoch + 1, 0
        self._reset_sums()
        if self.is_writer:
            runs.write_history(self.run_dir, self.history)
            self.log(format_row(row, self.settings.n_epochs))
        self._call("on_epoch_end", row)

    @torch.no_grad()
    def validate(self):
        self.model.eval()
        loss, correct, n = 0.0, 0, len(self.val_y)
        for i in range(0, n, self.settings.val_batch_size):
            x, y = self.val_x[i:i + self.settings.val_batch_size], self.val_y[i:i + self.settings.val_batch_size]
            logits = self.model(x)
            loss += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        self.model.train()
        return float(loss) / n, int(correct) / n

    def order(self, epoch):
        """The epoch's permutation of the training set: a function of (seed, epoch) only."""
        g = generator(self.settings.seed, epoch)
        return torch.randperm(len(self.train_y), generator=g).to(self.fabric.device)

    def _call(self, name, *args):
        for hook in self._hooks[name]:
            hook(self, *args)

    def _check_finite(self):
        """The epoch's figures so far; NonFiniteLoss if a loss was NaN/inf and stop_on_nan is set."""
        losses, sizes, correct = self._epoch_figures()
        if self.settings.stop_on_nan and not bool(torch.isfinite(losses).all()):
            raise NonFiniteLoss(f"training loss became NaN or infinite in epoch {self.epoch + 1} (by step "
                                f"{self.step}); lower optimizer.lr, or set training_loop.stop_on_nan=False")
        return losses, sizes, correct

    # ---- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self):
        """Write checkpoints/last.ckpt atomically: everything needed to continue exactly from here."""
        losses, sizes, correct = self._check_finite()  # never overwrite a good checkpoint with a diverged one
        if not self.is_writer:
            return
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and self.fabric.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.fabric.device)
        state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "epoch": self.epoch, "batch": self.batch, "step": self.step, "elapsed": self.elapsed,
                 "losses": losses, "sizes": sizes, "correct": correct,
                 "history": self.history, "rng": rng}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        os.makedirs(os.path.join(self.run_dir, runs.CHECKPOINTS), exist_ok=True)
        runs.write_atomic(runs.checkpoint_path(self.run_dir), buffer.getvalue())

    def load_checkpoint(self):
        state = torch.load(runs.checkpoint_path(self.run_dir), map_location=self.fabric.device,
                           weights_only=True)  # plain tensors and lists only: no arbitrary unpickling
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.elapsed, self.history, self.correct = state["elapsed"], state["history"], state["correct"]
        self.losses, self.sizes = list(state["losses"].unbind()), [int(n) for n in state["sizes"].tolist()]
        torch.set_rng_state(state["rng"]["cpu"].cpu())
        if "cuda" in state["rng"] and self.fabric.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.fabric.device)
        if self.is_writer:
            runs.write_history(self.run_dir, self.history)  # drop rows written after this checkpoint

    # ---- TensorBoard ---------------------------------------------------------------------------

    def log_scalar(self, name, value, step):
        if not self.is_writer:
            return
        if self._tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter
            # purge_step drops events a killed attempt wrote after the checkpoint we resumed from
            self._tensorboard = SummaryWriter(os.path.join(self.run_dir, runs.TENSORBOARD),
                                              purge_step=self.step if self.step else None)
        self._tensorboard.add_scalar(name, value, step)

    def flush_scalars(self):
        if self._tensorboard:
            self._tensorboard.flush()


def generator(*numbers):
    """A CPU torch.Generator seeded from a tuple of integers (seed, epoch, step...)."""
    digest = hashlib.blake2b(repr(numbers).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def format_row(row, n_epochs):
    return (f"epoch {row['epoch']}/{n_epochs} step {row['step']}: train_loss {row['train_loss']:.4f} "
            f"train_acc {row['train_acc']:.4f} val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
            f"lr {row['lr']:.3g} ({row['time']:.1f} s)")


class Progress:
    """A progress bar on stderr, used when it is a terminal (otherwise the loop logs one line per epoch)."""

    def __init__(self, loop):
        self.loop, self.stream = loop, sys.stderr
        self.next_draw = 0.0

    def draw(self):
        now = time.monotonic()
        if now < self.next_draw and self.loop.batch < self.loop.batches_per_epoch:
            return
        self.next_draw = now + 0.2
        loop, width = self.loop, 30
        done = loop.batch / loop.batches_per_epoch
        bar = "#" * int(done * width) + "-" * (width - int(done * width))
        end = "\r" if loop.batch < loop.batches_per_epoch else "\r\033[K"
        self.stream.write(f"\repoch {loop.epoch + 1}/{loop.settings.n_epochs} [{bar}] "
                          f"{loop.batch}/{loop.batches_per_epoch}{end}")
        self.stream.flush()
