"""The run-folder library: atomic writes, status derivation, history round trip, locks."""
import fcntl
import os
import threading
import time

import pytest

from runkit.rundir import lock, runs
from runkit.sweeps import bindings


def test_history_round_trip(tmp_path):
    rows = [{"epoch": 1, "step": 10, "train_loss": 0.5, "val_mse": 0.6, "lr": 0.1, "time": 1.5}]
    runs.write_history(tmp_path, rows)
    assert runs.read_history(tmp_path) == rows
    assert list(runs.load_H(tmp_path).columns) == ["epoch", "step", "train_loss", "val_mse", "lr", "time"]


def test_history_columns_are_what_was_logged_and_stay_put(tmp_path):
    import numpy as np
    rows = [{"epoch": 1, "step": 5, "val_loss": 0.5, "lr": 0.1, "time": 1.0},
            {"epoch": 2, "step": 10, "val_loss": float("nan"), "note, quoted": np.float32(2.5), "lr": 0.1,
             "time": 2.0}]
    runs.write_history(tmp_path, rows)
    assert (tmp_path / runs.HISTORY).read_text().splitlines()[0] == 'epoch,step,val_loss,"note, quoted",lr,time'
    back = runs.read_history(tmp_path)
    assert back[0]["note, quoted"] is None and back[1]["note, quoted"] == 2.5 and back[1]["val_loss"] is None


def test_json_files_hold_null_for_nan(tmp_path):
    runs.write_json(tmp_path, runs.METRICS, {"best": {"val_loss": float("nan"), "x": float("inf")}})
    assert "NaN" not in (tmp_path / runs.METRICS).read_text()
    assert runs.read_json(tmp_path, runs.METRICS) == {"best": {"val_loss": None, "x": None}}


def test_truncated_history_is_corrupt(tmp_path):
    (tmp_path / runs.HISTORY).write_text("epoch,step,train_loss,lr,time\n0,10,0.5\n")
    with pytest.raises(runs.CorruptRun, match="line 2"):
        runs.read_history(tmp_path)


def test_half_json_is_corrupt(tmp_path):
    (tmp_path / runs.METRICS).write_text('{"final": {"val_acc": 0.')
    with pytest.raises(runs.CorruptRun, match="metrics.json"):
        runs.read_json(tmp_path, runs.METRICS)


def test_status_order(tmp_path):
    assert runs.status(tmp_path) == "incomplete"
    fd = lock.try_lock(tmp_path)
    assert runs.status(tmp_path) == "running"  # held on this machine: alive, heartbeat or not
    runs.touch(tmp_path, runs.HEARTBEAT)
    os.close(fd)
    assert runs.status(tmp_path) == "dead"  # the lock is free: not running, however fresh the heartbeat
    (tmp_path / runs.LOCK).write_text("another-host 123\n")  # a run on a machine whose locks we cannot see
    assert runs.status(tmp_path) == "running"
    assert runs.status(tmp_path, now=time.time() + runs.HEARTBEAT_STALE + 1) == "dead"
    runs.write_json(tmp_path, runs.ERROR, {"error": "boom"})
    assert runs.status(tmp_path) == "failed"
    (tmp_path / runs.STOPPED).write_text("SIGTERM\n")
    assert runs.status(tmp_path) == "stopped"
    runs.mark_finished(tmp_path)
    assert runs.status(tmp_path) == "finished"


def test_a_run_is_done_when_finished_with_the_epochs_asked_or_stopped_early(tmp_path):
    """The "done" rule a rerun of train obeys: FINISHED, and as many epochs as asked (those a callback added,
    meta.json's epochs_added, not counted), or fewer where EarlyStopping stopped it."""
    assert runs.epochs_trained(tmp_path) is None and not runs.done(tmp_path, 2)
    runs.write_history(tmp_path, [{"epoch": e, "step": 10 * e, "time": 1.0} for e in (1, 2, 3)])
    assert runs.epochs_trained(tmp_path) == 3 and not runs.done(tmp_path, 3)  # not finished
    runs.mark_finished(tmp_path)
    assert runs.done(tmp_path, 3) and not runs.done(tmp_path, 4) and not runs.done(tmp_path, 2)
    runs.write_json(tmp_path, runs.META, {"epochs_added": 1})  # SWA's BatchNorm epoch
    assert runs.epochs_trained(tmp_path) == 2 and runs.done(tmp_path, 2) and not runs.done(tmp_path, 3)
    runs.write_json(tmp_path, runs.METRICS, {"stopped_early": True})
    assert runs.done(tmp_path, 5)


def test_undoing_an_attempt_removes_a_folder_it_made_and_clears_one_it_found(tmp_path):
    """Bad config found after train began: the rerun with the fix must start afresh, as if train never ran."""
    from runkit.rundir import lifecycle
    made = lifecycle.Run.own(tmp_path / "new")
    assert made.created and (tmp_path / "new").is_dir()
    made.undo()
    made.release()
    assert not (tmp_path / "new").exists()
    found = tmp_path / "old"
    found.mkdir()
    (found / "notes.txt").write_text("the user's\n")
    run = lifecycle.Run.own(found)
    runs.write_json(found, runs.BINDINGS, {"training_loop.n_epochs": 2})
    assert not run.created
    run.undo()
    run.release()
    assert (found / "notes.txt").exists() and not (found / runs.BINDINGS).exists()


def test_a_status_probe_never_makes_a_claim_fail(tmp_path):
    os.close(lock.try_lock(tmp_path))
    probe = os.open(tmp_path / runs.LOCK, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH)  # what is_locked holds for an instant, stretched
    threading.Timer(0.05, os.close, [probe]).start()
    fd = lock.try_lock(tmp_path)
    assert fd is not None and lock.is_locked(tmp_path)
    os.close(fd)


def test_atomic_write_leaves_no_temporary(tmp_path):
    runs.write_atomic(str(tmp_path / "x.json"), "{}")
    assert os.listdir(tmp_path) == ["x.json"]


def test_lock_is_exclusive_and_inheritable(tmp_path, monkeypatch):
    fd = lock.try_lock(tmp_path)
    assert fd is not None and lock.try_lock(tmp_path) is None and lock.is_locked(tmp_path)
    monkeypatch.setenv("RUNKIT_LOCK_FD", str(fd))
    assert lock.inherited(tmp_path) == fd
    os.close(fd)
    assert not lock.is_locked(tmp_path)


def test_find_stops_at_run_folders(tmp_path):
    for name in ("a", "b/c"):
        (tmp_path / name).mkdir(parents=True)
        runs.write_json(tmp_path / name, runs.BINDINGS, {})
    (tmp_path / "a" / "nested").mkdir()
    runs.write_json(tmp_path / "a" / "nested", runs.BINDINGS, {})
    assert runs.find([tmp_path]) == [str(tmp_path / "a"), str(tmp_path / "b/c")]


@pytest.mark.parametrize("text,expected", [
    (["a.b=1#c.d='x#y'"], ["a.b=1", "c.d='x#y'"]),
    (["a.b=1", "c.d=2#"], ["a.b=1", "c.d=2"]),
])
def test_binding_split(text, expected):
    assert bindings.split(text) == expected


@pytest.mark.parametrize("value", [1, 0.001, 1e-5, "adam", True, None, [1, 2], (3,), "@cnn"])
def test_binding_round_trip(value):
    key, parsed = bindings.parse(bindings.format("optimizer.lr", value))
    assert (key, parsed) == ("optimizer.lr", value)


@pytest.mark.parametrize("bad", ["nolr", "a=1", "a.b=", "a.b=adam", "a b.c=1"])
def test_bad_bindings(bad):
    with pytest.raises(bindings.BindingError):
        bindings.parse(bad)


def test_atomic_write_replaces_the_file_never_writes_into_it(tmp_path):
    """A reader that opened the old file reads it whole while the new one is written: a new file is renamed
    over it (a kill mid-write leaves the old one)."""
    target = tmp_path / "x.json"
    runs.write_atomic(str(target), "old")
    with open(target) as reader:
        runs.write_atomic(str(target), "new")
        assert reader.read() == "old"
    assert target.read_text() == "new"


def test_a_released_claim_can_be_claimed_again(tmp_path):
    """A runner that claimed a run and found nothing to do gives the lock back: the run is free again."""
    from runkit.rundir import lifecycle
    first, second = lifecycle.Run(str(tmp_path)), lifecycle.Run(str(tmp_path))
    assert first.claim() and not second.claim()
    first.release()
    assert second.claim()
    second.release()
