"""Lightning's checkpoint writer, made atomic (a kill -9 while saving leaves the previous checkpoint whole),
each checkpoint with its digest and last.ckpt's previous sound version beside it (runkit.rundir.checkpoints),
written off the training loop, and the rule for loading them back: the run's own checkpoints are unpickled
whole, whatever the hyperparameters hold; any other file keeps torch's weights_only loader
(docs/run-folder.md).

A save stages the checkpoint: its objects are pickled and unpickled once, its tensors copied off the device
and out of the live tensors (storages shared as in the original; into the previous save's copies, so the
state is copied once in memory and allocated once), so training may go on changing them; this is also the
check that the checkpoint loads back. Then one writer thread pickles the staged copy straight into the file
(hashing as it streams: no second copy), renames it into place and keeps prev.ckpt. One save is in flight
at a time: the next save waits for it, and so does the end of fit (runkit.training.fit: the last checkpoint
is complete before the run records its ending, then `close` lets the thread and the copies go); `wait`
raises the writer's error.
"""
import io
import os
import pickle
import queue
import threading

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from runkit import cli
from runkit.errors import BadInput
from runkit.rundir import checkpoints
from runkit.training.config import ConfigError


class CheckpointNotLoadable(BadInput):
    """A checkpoint holds an object that a rerun could not load back: the run says so at its first save."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def __init__(self):
        super().__init__()
        self._jobs = queue.Queue()  # what the writer thread does next, in order
        self._writer = None
        self._error = None           # the writer's failure, raised by the next wait
        self._buffers = {}           # the last save's copies of the storages, filled again by the next

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        self.wait()  # one save in flight at a time
        staged = stage(checkpoint, path, self._buffers)
        self.submit(lambda: checkpoints.write(path, lambda stream: torch.save(staged, stream)))

    def remove_checkpoint(self, path):
        self.submit(lambda: checkpoints.remove(path))  # and its digest: a user's ModelCheckpoint leaves no stale .sha256

    def submit(self, job):
        """Run job on the writer thread, after what it has to do already."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._work, name="runkit-checkpoint-writer", daemon=True)
            self._writer.start()
        self._jobs.put(job)

    def wait(self):
        """Until the writer has done everything submitted; its failure, if any, is raised here."""
        self._jobs.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self):
        """wait, then let the writer thread and the staging copies go (the end of fit: the Python API may train
        run after run in one process)."""
        try:
            self.wait()
        finally:
            self._buffers.clear()
            if self._writer is not None:
                self._jobs.put(None)
                self._writer = None

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                self._jobs.task_done()
                return
            try:
                if self._error is None:  # after a failure nothing more is written: the next wait raises it
                    job()
            except BaseException as error:  # noqa: BLE001 - handed to the training loop's next wait
                self._error = error
            finally:
                job = None  # the staged checkpoint goes before the writer waits for the next
                self._jobs.task_done()


def compose(ours, plugins):
    """The Trainer's plugins with runkit's writer among them. A CheckpointIO of the user's that wraps another
    (a _WrappingCheckpointIO given none) wraps runkit's; any other would replace it, and Lightning's
    AsyncCheckpointIO would save from a thread of its own, out of order with runkit's: ConfigError."""
    theirs = [plugin for plugin in plugins if _is(plugin, "CheckpointIO")]
    for plugin in theirs:
        name = type(plugin).__name__
        if _is(plugin, "AsyncCheckpointIO"):
            raise ConfigError(f"trainer.plugins: {name} is not needed: runkit writes checkpoints off the training "
                              "loop already (atomic, with digests: docs/run-folder.md); drop it")
        if not _is(plugin, "_WrappingCheckpointIO") or plugin.checkpoint_io is not None or len(theirs) > 1:
            raise ConfigError(f"trainer.plugins: {name} would replace runkit's checkpoint writer (atomic, with "
                              "digests, off the training loop): give one _WrappingCheckpointIO without a "
                              "checkpoint_io of its own, which then wraps runkit's, or drop it")
    if theirs:
        theirs[0].checkpoint_io = ours
        return list(plugins)
    return [ours, *plugins]


def _is(obj, class_name):
    """Whether obj is an instance of a class of that name (Lightning's, of either package)."""
    return any(cls.__name__ == class_name for cls in type(obj).__mro__)


def writer(trainer):
    """runkit's AtomicCheckpointIO of a Trainer, under the user's wrapping plugin if there is one."""
    io_ = trainer.strategy.checkpoint_io
    while not isinstance(io_, AtomicCheckpointIO):
        io_ = io_.checkpoint_io
    return io_


def copy(trainer, source, target):
    """target := source (last.ckpt from best.ckpt), on the writer thread, once source is written."""
    writer(trainer).submit(lambda: checkpoints.copy(source, target))


def weights_only(path):
    """The trust rule: a checkpoint that is the run's own (the digest runkit wrote beside it matches) is
    unpickled whole; any other file (and none) loads with torch's weights_only loader."""
    return path is None or not checkpoints.trusted(path)


def stage(checkpoint, path, buffers):
    """The checkpoint as torch.load would give it back, its tensors copied to the CPU (views of one storage
    stay views of one copy), into `buffers` (storage -> the previous save's copy: filled again, so a save
    allocates nothing once the state's shapes are known); CheckpointNotLoadable naming the part that would not
    come back when a rerun loads it (an object that unpickles to an error)."""
    try:
        copies = {}
        staged = _round_trip(checkpoint, copies=copies, spares=buffers)
        buffers.clear()
        buffers.update(copies)
        return staged
    except Exception:  # noqa: BLE001 - whatever user objects raise on the way: find which one, below
        found = _first_failure(checkpoint, "checkpoint")
        if found is None:
            raise
    where, error = found
    raise CheckpointNotLoadable(
        f"{os.path.basename(os.fspath(path))} would not load back when the run resumes: {where} "
        f"({type(error).__name__}: {cli.first_line(error)}); leave it out (save_hyperparameters(ignore=[...]) "
        "for a hyperparameter) or make pickle.loads(pickle.dumps(it)) work, then rerun")


def _first_failure(obj, where):
    """(where, error) of the innermost part of obj that does not survive pickling and unpickling, or None."""
    try:
        _round_trip(obj)
        return None
    except Exception as error:  # noqa: BLE001 - whatever user objects raise on the way
        if isinstance(obj, dict):
            for key, value in obj.items():
                inner = _first_failure(value, f"{where}[{key!r}]")
                if inner is not None:
                    return inner
        return where, error


def _round_trip(obj, copies=None, spares=None):
    """obj pickled and unpickled as torch.save and torch.load would; its tensors shared with obj, or copied to
    the CPU when `copies` is given (a dict: storage -> its copy; into `spares`' copies where they fit)."""
    buffer = io.BytesIO()
    pickler = _Outline(buffer)
    pickler.dump(obj)
    buffer.seek(0)
    tensors = pickler.tensors if copies is None else [_copy(t, copies, spares or {}) for t in pickler.tensors]
    return _Reload(buffer, tensors).load()


def _copy(tensor, copies, spares):
    """A CPU copy of tensor, a view of the copy of its storage (one copy per storage); a Parameter stays one."""
    if type(tensor) is torch.nn.Parameter:
        return torch.nn.Parameter(_copy(tensor.detach(), copies, spares), requires_grad=tensor.requires_grad)
    if type(tensor) is not torch.Tensor or tensor.layout != torch.strided or tensor.is_quantized:
        return tensor.detach().to("cpu", copy=True)  # sparse, quantized, subclasses: a copy of its own
    storage = tensor.untyped_storage()
    key = (storage.device, storage.data_ptr(), storage.nbytes())
    if key not in copies:
        spare = spares.get(key)
        if spare is not None:
            spare.copy_(storage)
            copies[key] = spare
        else:
            copies[key] = storage.clone() if storage.device.type == "cpu" else storage.cpu()
    return torch.empty(0, dtype=tensor.dtype).set_(copies[key], tensor.storage_offset(), tensor.size(),
                                                   tensor.stride())


class _Outline(pickle.Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors = []

    def persistent_id(self, obj):
        if isinstance(obj, torch.Tensor):
            self.tensors.append(obj)
            return len(self.tensors) - 1
        return None


class _Reload(pickle.Unpickler):
    def __init__(self, file, tensors):
        super().__init__(file)
        self.tensors = tensors

    def persistent_load(self, key):
        return self.tensors[key]


def checkpoint_step(run_dir):
    """The optimizer step of the checkpoint a rerun resumes from (0 without a sound one), read without
    loading its tensors (TensorBoard purges what a killed attempt logged after it)."""
    try:
        resume_from, _ = checkpoints.resume_point(run_dir)
        if resume_from is None:
            return 0
        return int(torch.load(resume_from, map_location="cpu", weights_only=weights_only(resume_from),
                              mmap=True)["global_step"])
    except (checkpoints.NoSoundCheckpoint, FileNotFoundError, KeyError, RuntimeError, OSError,
            pickle.UnpicklingError):
        return 0
