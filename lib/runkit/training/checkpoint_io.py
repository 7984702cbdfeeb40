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
