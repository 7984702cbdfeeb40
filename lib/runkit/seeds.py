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
    """Run a block with torch's, Python's and NumPy's global generators seeded from the numbers, then put
    their states back: a sample's augmentation is the same in any worker, and the caller's draws unchanged."""
    import numpy as np
    seed = derive(*numbers)
    saved = torch.get_rng_state(), random.getstate(), np.random.get_state()
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        np.random.set_state(saved[2])
