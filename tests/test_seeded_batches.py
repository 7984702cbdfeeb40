"""A rebuilt training DataLoader (runkit.training.loaders.rebuild) seeds the global generators once a batch:
the samples' draws are the same whichever process loads them and after a resume, and in the main process
the caller's own streams go on as if the loader had drawn nothing."""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from runkit.training.loaders import rebuild


class Noisy(Dataset):
    """Each read draws from all three global generators (an augmentation written in any of them)."""

    def __len__(self):
        return 40

    def __getitem__(self, index):
        return torch.tensor([float(index), torch.rand(()).item(), random.random(), np.random.rand()])


def epoch(loader, epoch_number, consumed=None):
    loader.sampler.set_epoch(epoch_number)
    if consumed is not None:
        loader.load_state_dict({"epoch": epoch_number, "consumed": consumed})
    return [batch for batch in loader]


def rebuilt(num_workers=0, **options):
    loader, reason = rebuild(DataLoader(Noisy(), batch_size=8, shuffle=True, num_workers=num_workers, **options),
                             seed=3)
    assert reason is None
    return loader


def test_a_sample_draws_the_same_in_the_main_process_in_workers_and_after_a_resume():
    main = epoch(rebuilt(), 2)
    assert len(main) == 5 and len({tuple(b[:, 1].tolist()) for b in main}) == 5  # every batch draws anew
    for workers in (epoch(rebuilt(num_workers=2), 2), epoch(rebuilt(num_workers=1, persistent_workers=True), 2)):
        assert all(torch.equal(a, b) for a, b in zip(main, workers, strict=True))
    resumed = epoch(rebuilt(), 2, consumed=3)
    assert all(torch.equal(a, b) for a, b in zip(main[3:], resumed, strict=True))
    assert not torch.equal(epoch(rebuilt(), 3)[0], main[0])


def test_in_the_main_process_the_callers_own_draws_go_on_as_if_the_loader_drew_nothing():
    def draws():
        return torch.rand(3).tolist(), random.random(), np.random.rand(3).tolist()

    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    expected = [draws() for _ in range(4)]
    loader = rebuilt()
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    seen = []
    for _batch in loader:
        seen.append(draws())
        if len(seen) == 4:
            break
    assert seen == expected
