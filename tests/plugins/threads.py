"""A callback that writes down the torch thread count each attempt trains with (one line an attempt in
`path`): what a resumed attempt computes with, whatever OMP_NUM_THREADS its shell set."""
import pytorch_lightning as pl
import torch


class Threads(pl.Callback):
    def __init__(self, path="threads.txt"):
        self.path = path

    def on_train_start(self, trainer, pl_module):
        with open(self.path, "a") as f:
            f.write(f"{torch.get_num_threads()}\n")
