"""Write a tiny CIFAR-10 in the archive's exact on-disk format, so tests never need the 170 MB download.

The real batches are Python 2 pickles (protocol 2) whose text is Python 2 `str`: read back as bytes with
encoding="bytes" and as str with encoding="latin1". Python 3 would pickle bytes another way, so a small
pickler writes them as Python 2 did; the archive then reads the same as the real one, torchvision included.
"""
import pickle
import struct
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 str (SHORT_BINSTRING / BINSTRING), as the CIFAR-10 batches hold them."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def write_pickle(path, obj):
    with open(path, "wb") as f:
        Python2Pickler(f, protocol=2).dump(obj)


def write_cifar_archive(data_dir, per_batch=20, seed=0):
    """Write data_dir/cifar-10-batches-py with five training batches, a test batch and batches.meta of random
    images; returns {batch name: (images uint8 (N, 3, 32, 32), labels int64)} for checking what is read."""
    folder = Path(data_dir) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(label) for label in rng.integers(0, 10, per_batch)]
        batch_label = f"training batch {i + 1} of 5" if name != "test_batch" else "testing batch 1 of 1"
        write_pickle(folder / name, {
            b"batch_label": batch_label.encode(), b"labels": labels, b"data": data,
            b"filenames": [f"image_{i}_{j}.png".encode() for j in range(per_batch)]})
        written[name] = (data.reshape(-1, 3, 32, 32), np.array(labels, dtype=np.int64))
    write_pickle(folder / "batches.meta", {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                                           b"label_names": [name.encode() for name in LABEL_NAMES]})
    return written
