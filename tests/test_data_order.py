"""The order in which a resumable loader reads an epoch (runkit.data.resumable.EpochOrder): a function of the
seed and the epoch only, so a resumed run reads the rest of the same epoch; under DDP split as Lightning's
DistributedSampler splits it."""
import pytest

from runkit.data.resumable import EpochOrder


def test_the_order_of_an_epoch_is_a_function_of_seed_and_epoch():
    def order(seed, epoch):
        o = EpochOrder(50, seed)
        o.set_epoch(epoch)
        return o.indices().tolist()
    assert order(0, 1) == order(0, 1) and sorted(order(0, 1)) == list(range(50))
    assert order(0, 1) != order(0, 2) and order(0, 1) != order(1, 1)


@pytest.mark.parametrize("n, world", [(10, 3), (10, 2), (2, 4)])
def test_under_ddp_every_rank_gets_as_many_and_no_sample_is_left_out(n, world):
    """As Lightning's DistributedSampler: the epoch's order padded with its own first indices."""
    shares = []
    for rank in range(world):
        o = EpochOrder(n, 7, rank=rank, world=world)
        o.set_epoch(3)
        shares.append(o.indices().tolist())
    assert {len(share) for share in shares} == {-(-n // world)}
    whole = EpochOrder(n, 7)
    whole.set_epoch(3)
    padded = sum(shares, [])
    assert padded[:n] == whole.indices().tolist() and set(padded[n:]) <= set(padded[:n])
