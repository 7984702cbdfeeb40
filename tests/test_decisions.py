"""The pure decisions of the runners, read from files alone (no subprocess): what runbatch does with a spec
and the state of its folder (sweeps/batch.py, docs/spec.md 'Changed specs'), and which status an attempt's
ending leaves (rundir/lifecycle.py, docs/spec.md 'Outcomes'). A newcomer can read the rules here."""
import os
import signal

import pytest

from runkit.rundir import lifecycle, lock, runs
from runkit.sweeps import batch, spec


def a_spec(tmp_path, epochs=3, lr="0.1"):
    run_dir = str(tmp_path / "run")
    return {"name": "run", "run_dir": run_dir,
            "argv": ["train", run_dir, "-b", f"training_loop.n_epochs={epochs}#optimizer.lr={lr}"]}


def made(s, *files):
    """A run folder as a runner left it after starting s, with these of train's files."""
    os.makedirs(s["run_dir"], exist_ok=True)
    runs.write_json(s["run_dir"], runs.SPEC, spec.made_from(s))
    for name in files:
        runs.write_atomic(runs.path(s["run_dir"], name), "x\n")


def test_a_new_folder_is_run(tmp_path):
    assert batch.decide(a_spec(tmp_path)) == batch.Verdict("run")


def test_a_finished_run_is_skipped_and_more_epochs_continue_it(tmp_path):
    made(a_spec(tmp_path), runs.HISTORY, runs.FINISHED)
    assert batch.decide(a_spec(tmp_path)) == batch.Verdict("skipped", "finished")
    assert batch.decide(a_spec(tmp_path, epochs=5)).start == "continue"


def test_an_unfinished_run_is_started_again_to_resume(tmp_path):
    made(a_spec(tmp_path), runs.HISTORY, runs.HEARTBEAT)  # dead: its lock is free
    assert runs.status(a_spec(tmp_path)["run_dir"]) == "dead"
    assert batch.decide(a_spec(tmp_path)) == batch.Verdict("run")


def test_a_changed_binding_is_a_conflict_unless_restart_changed(tmp_path):
    made(a_spec(tmp_path), runs.HISTORY, runs.FINISHED)
    verdict = batch.decide(a_spec(tmp_path, lr="0.5"))
    assert verdict.action == "conflict" and verdict.changes == ("optimizer.lr: 0.1 -> 0.5",)
    assert batch.decide(a_spec(tmp_path, lr="0.5"), restart_changed=True).start == "restart"


def test_a_folder_of_runners_records_only_is_never_a_conflict(tmp_path):
    made(a_spec(tmp_path), runs.STDOUT, runs.STDERR)  # started, but train wrote nothing yet: nothing to lose
    assert batch.decide(a_spec(tmp_path, lr="0.5")) == batch.Verdict("run")


def test_a_run_another_process_holds_is_skipped_as_running(tmp_path):
    s = a_spec(tmp_path)
    made(s, runs.HISTORY)
    held = lock.Lock.claim(s["run_dir"])
    try:
        assert batch.decide(s) == batch.Verdict("skipped", "running")
        assert batch.decide(s, ignore_running=True) == batch.Verdict("run")  # our own retry
    finally:
        held.release()


@pytest.mark.parametrize("code,warned,status", [
    (0, None, "finished"),
    (128 + signal.SIGTERM, None, "stopped"),       # train checkpointed and stopped: rerun resumes
    (128 + signal.SIGUSR2, None, "stopped"),
    (-signal.SIGKILL, None, "killed"),
    (-signal.SIGTERM, "SIGUSR1", "stopped"),       # under SLURM: killed on the way out after the warning
    (1, None, "failed"),
])
def test_how_an_attempt_ended_is_its_status(tmp_path, code, warned, status):
    run = lifecycle.Run(str(tmp_path))
    assert run.claim()
    how = run.ended(code, warned)
    assert how["status"] == status and run.lock is None
    assert runs.status(str(tmp_path)) == {"killed": "failed"}.get(status, status)
