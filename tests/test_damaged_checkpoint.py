"""A damaged last.ckpt (cut short, or with flipped bytes: a copy interrupted, bad storage) is never trusted:
after a real kill -9, the rerun resumes from the previous sound checkpoint and ends equal to an
uninterrupted run; with no sound checkpoint left it refuses in one line (exit 2) and writes nothing."""
import os
import random

import pytest

from conftest import REPO, tool
from helpers.kills import assert_killed, kill_callback
from helpers.same_run import assert_same_run
from runkit.rundir import checkpoints, runs

pytestmark = pytest.mark.usefixtures("one_thread")

CNN = REPO / "configs" / "digits_cnn.gin"
BINDINGS = "training_loop.n_epochs=4#cnn.n_filters=16#training_loop.checkpoint_every_n_steps=10"
STEPS = 4 * 23  # digits: 1437 training images in batches of 64


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def flip_bytes(path):
    """Flip 16 bytes in the middle: same size, a zip that may still open."""
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        chunk = f.read(16)
        f.seek(-len(chunk), os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, warm):
    run = tmp_path_factory.mktemp("damaged") / "uninterrupted"
    warm.train(run, CNN, "-b", BINDINGS, check=0)
    return run


def killed_with_two_checkpoints(run, rng, monkeypatch, warm):
    """kill -9 at a random step after last.ckpt has been replaced once (so prev.ckpt exists): the run kills
    itself there (a kill at a random moment could come after the run finished on a fast machine). Returns
    the argv that reruns it."""
    argv = ["train", run, CNN, kill_callback(run.parent, monkeypatch), "-b", BINDINGS]
    monkeypatch.setenv("KILL_AT", str(rng.randrange(21, STEPS)))  # checkpoints at steps 10 and 20 came first
    assert_killed(warm.start(argv))  # forked warm, as runbatch's runs
    monkeypatch.delenv("KILL_AT")
    previous = run / runs.CHECKPOINTS / (checkpoints.PREVIOUS + checkpoints.DIGEST)
    assert runs.status(run) != "finished" and previous.exists()
    return argv


@pytest.mark.parametrize("damage", [truncate, flip_bytes])
def test_a_damaged_last_checkpoint_resumes_from_the_previous_sound_one(tmp_path, reference, damage, monkeypatch, warm):
    seed = random.randrange(10**6)
    run = tmp_path / "interrupted"
    argv = killed_with_two_checkpoints(run, random.Random(seed), monkeypatch, warm)
    last = run / runs.CHECKPOINTS / checkpoints.LAST
    damage(last)
    assert checkpoints.damage(str(last)) is not None
    check_by_hand = "cd RUN_DIR/checkpoints && sha256sum -c *.sha256"  # as docs/run-folder.md says
    by_hand = check_by_hand.replace("RUN_DIR", str(run))
    assert tool("sh", "-c", by_hand).returncode == 1

    resumed = warm.train(*argv[1:], check=0)
    log = (run / runs.LOG).read_text()
    assert "not sound" in log and "resuming from" in log and "prev.ckpt" in log, (seed, log)
    assert_same_run(run, reference, f"(seed {seed})")
    assert checkpoints.damage(str(last)) is None and resumed.stdout.count("\n") == 1
    assert tool("sh", "-c", by_hand).returncode == 0


def test_with_no_sound_checkpoint_train_refuses_in_one_line_and_restart_starts_over(tmp_path, reference,
                                                                                   monkeypatch, warm):
    run = tmp_path / "interrupted"
    argv = killed_with_two_checkpoints(run, random.Random(), monkeypatch, warm)
    folder = run / runs.CHECKPOINTS
    truncate(folder / checkpoints.LAST)
    flip_bytes(folder / checkpoints.PREVIOUS)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}

    refused = tool(*argv, check=2)
    assert refused.stdout == "" and refused.stderr.count("\n") == 1, refused.stderr
    assert str(folder / checkpoints.LAST) in refused.stderr and "--restart" in refused.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing written

    warm.train(*argv[1:], "--restart", check=0)
    assert_same_run(run, reference)


def test_a_checkpoint_without_a_digest_is_sound_only_when_its_archive_checks(tmp_path):
    """A save killed between the rename and the digest, or a checkpoint from before digests: trusted by the
    CRC-32s of torch's zip archive, so old run folders still resume; a flipped byte is still caught."""
    import torch
    path = tmp_path / checkpoints.LAST
    torch.save({"weights": torch.arange(4096, dtype=torch.float32), "global_step": 7}, path)
    assert checkpoints.damage(str(path)) is None
    flip_bytes(path)
    assert "CRC" in checkpoints.damage(str(path)) or "archive" in checkpoints.damage(str(path))


def test_a_sound_last_checkpoint_without_a_digest_becomes_prev_at_the_next_save(tmp_path):
    """Killed between last.ckpt's rename and its digest, the rerun resumes from last.ckpt; its next save
    must keep that one as prev.ckpt (with a digest), not fail for want of the digest."""
    import torch
    path = str(tmp_path / checkpoints.LAST)
    torch.save({"global_step": 1}, path)  # whole, no digest
    checkpoints.save(path, b"new")
    assert checkpoints.damage(str(tmp_path / checkpoints.PREVIOUS)) is None
    assert open(path, "rb").read() == b"new"
