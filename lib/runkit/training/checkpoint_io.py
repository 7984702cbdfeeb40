"""Lightning's checkpoint writer, made atomic (a kill -9 while saving leaves the previous checkpoint whole),
each checkpoint with its digest and last.ckpt's previous sound version beside it (runkit.rundir.checkpoints),
and the rule for loading them back: the run's own checkpoints are unpickled whole, whatever the
hyperparameters hold; any other file keeps torch's weights_only loader (docs/run-folder.md).
"""
import io
import os
import pickle

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from runkit import cli
from runkit.errors import BadInput
from runkit.rundir import checkpoints


class CheckpointNotLoadable(BadInput):
    """A checkpoint holds an object that a rerun could not load back: the run says so at its first save."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def __init__(self):
        super().__init__()
        self.checked = False  # the attempt's first save checks that what it holds comes back

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if not self.checked:
            check_loadable(checkpoint, path)
            self.checked = True
        checkpoints.write(path, lambda stream: torch.save(checkpoint, stream))

    def remove_checkpoint(self, path):
        checkpoints.remove(path)  # and its digest: a user's ModelCheckpoint leaves no stale .sha256


def weights_only(path):
    """The trust rule: a checkpoint that is the run's own (the digest runkit wrote beside it matches) is
    unpickled whole; any other file (and none) loads with torch's weights_only loader."""
    return path is None or not checkpoints.trusted(path)


def check_loadable(checkpoint, path):
    """CheckpointNotLoadable naming the part of the checkpoint that would not come back when a rerun loads
    it (a hyperparameter that unpickles to an error, a class defined in __main__), before it is written."""
    found = _first_failure(checkpoint, "checkpoint")
    if found is None:
        return
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


def _round_trip(obj):
    """obj pickled and unpickled as torch.save and torch.load would, but for its tensors' data (shared)."""
    buffer = io.BytesIO()
    pickler = _Outline(buffer)
    pickler.dump(obj)
    buffer.seek(0)
    return _Reload(buffer, pickler.tensors).load()


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

    def find_class(self, module, name):
        if module == "__main__":
            raise pickle.UnpicklingError(f"{name} is defined in __main__, which a rerun does not import; "
                                         "move it into a module")
        return super().find_class(module, name)


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
