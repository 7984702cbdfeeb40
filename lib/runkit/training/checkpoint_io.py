"""Lightning's checkpoint writer, made atomic (a kill -9 while saving leaves the previous checkpoint whole),
each checkpoint with its digest and last.ckpt's previous sound version beside it (runkit.rundir.checkpoints)."""
import io
import os

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from runkit.rundir import checkpoints


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None):
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        checkpoints.save(path, buffer.getvalue())


def checkpoint_step(run_dir):
    """The optimizer step of the checkpoint a rerun resumes from (0 without a sound one), read without
    loading its tensors (TensorBoard purges what a killed attempt logged after it)."""
    try:
        resume_from, _ = checkpoints.resume_point(run_dir)
        if resume_from is None:
            return 0
        return int(torch.load(resume_from, map_location="cpu", weights_only=True, mmap=True)["global_step"])
    except (checkpoints.NoSoundCheckpoint, FileNotFoundError, KeyError, RuntimeError, OSError):
        return 0
