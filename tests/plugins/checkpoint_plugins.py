"""CheckpointIO plugins as a config binds them (`import checkpoint_plugins`, then
`trainer.plugins = [@AsyncCheckpointIO()]`), with tests/plugins on PYTHONPATH: Lightning's AsyncCheckpointIO
and TorchCheckpointIO, and a wrapping plugin of the user's that writes down each path saved through it."""
import gin
from pytorch_lightning.plugins.io import AsyncCheckpointIO, TorchCheckpointIO
from pytorch_lightning.plugins.io.wrapper import _WrappingCheckpointIO

gin.external_configurable(AsyncCheckpointIO)
gin.external_configurable(TorchCheckpointIO)


@gin.configurable
class SavedPaths(_WrappingCheckpointIO):
    def __init__(self, log="saved.txt"):
        super().__init__()
        self.log = log

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(f"{path}\n")
