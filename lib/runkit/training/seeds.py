"""Random numbers as functions of integers: what makes a resumed run draw what an uninterrupted one drew."""
import contextlib
import ctypes
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
    batch's augmentation is the same in any worker. In the main process (no workers) the generators' states
    are put back afterwards, so the caller's own draws (dropout) go on as before (but for a normal value that
    NumPy's legacy generator had drawn in advance: it is dropped); a worker process draws from them for
    nothing else, and skips that cost. About 0.02 ms in the main process: a loader seeds once a batch."""
    import numpy as np
    from torch.utils.data import get_worker_info
    seed = derive(*numbers)
    numpy_state = _NumpyState(np.random.get_bit_generator())
    saved = None if get_worker_info() is not None else (torch.get_rng_state(), random.getstate(),
                                                        numpy_state.copy())
    torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds every accelerator
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        if saved is not None:
            torch.set_rng_state(saved[0])
            random.setstate(saved[1])
            numpy_state.restore(saved[2])


class _NumpyState:
    """The state of NumPy's global bit generator. Its default, a Mersenne Twister, is copied as the bytes of
    its state in memory (624 32-bit keys and an int position): 1 us, where np.random.get_state and set_state
    take 25 us each. Another bit generator (np.random.set_bit_generator) goes through its `state`."""
    MT19937_BYTES = 624 * 4 + 4

    def __init__(self, generator):
        import numpy as np
        self.generator = generator
        self.address = generator.ctypes.state_address if type(generator) is np.random.MT19937 else None

    def copy(self):
        if self.address is None:
            return self.generator.state
        copy = ctypes.create_string_buffer(self.MT19937_BYTES)
        ctypes.memmove(copy, self.address, self.MT19937_BYTES)
        return copy

    def restore(self, copy):
        if self.address is None:
            self.generator.state = copy
        else:
            ctypes.memmove(self.address, copy, self.MT19937_BYTES)
