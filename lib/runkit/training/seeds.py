"""Random numbers as functions of integers: what makes a resumed run draw what an uninterrupted one drew."""
import contextlib
import hashlib
import random

import torch


def derive(*numbers):
    """A 63-bit seed from a tuple of integers (seed, epoch, index...), the same on every machine."""
    digest = hashlib.blake2b(repr(numbers).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def generator(*numbers):
    """A CPU torch.Generator seeded from a tuple of integers."""
    return torch.Generator().manual_seed(derive(*numbers))


@contextlib.contextmanager
def seeded(*numbers):
    """Run a block with torch's (CPU), Python's and NumPy's global generators seeded from the numbers: a
    sample's augmentation is the same in any worker. In the main process (no workers) the generators'
    states are put back afterwards, so the caller's own draws (dropout) are unchanged; a worker process
    draws from them for nothing else, and skips that cost."""
    import numpy as np
    from torch.utils.data import get_worker_info
    seed = derive(*numbers)
    saved = None if get_worker_info() is not None else (torch.get_rng_state(), random.getstate(),
                                                        np.random.get_state())
    torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds every accelerator
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        if saved is not None:
            torch.set_rng_state(saved[0])
            random.setstate(saved[1])
            np.random.set_state(saved[2])
