"""Weights & Biases, with the real wandb package in offline mode (no account, no network): a run killed
with -9 and resumed is one W&B run whose history holds every step once."""
import importlib.util
import json
from collections import Counter

import pytest

from conftest import REPO, skip
from helpers.kills import assert_killed, kill_callback, resume_point
from runkit.rundir import runs
from runkit.training import checkpoint_io

if importlib.util.find_spec("wandb") is None:
    skip("needs wandb (pip install -r requirements.txt installs it)", allow_module_level=True)

from runkit.training import wandb_logger  # noqa: E402 - reads W&B's files with wandb's own record type

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

MLP = REPO / "configs" / "digits_mlp.gin"


@pytest.mark.slow
def test_a_run_killed_twice_is_one_wandb_run_with_every_step_once(tmp_path, monkeypatch, warm):
    """3 epochs of 45 steps, the learning rate logged at every step: SIGKILL after step 13 (checkpoint at
    10), W&B having flushed nothing (its default: every 15 s), so the rerun must log steps 0..13 again; then
    after step 78 (checkpoint at 70), W&B flushing every 10 ms and given a second to, so steps 71..78 are in
    its file (all but the last, which W&B holds until the next step comes) and the rerun, which computes
    them again, must not log them twice; then a rerun to the end. Three attempts, three offline-run folders with
    one run id (kept in the run folder); together their history has each (step, metric) once: the rate at
    every step 0..134, each epoch's val_acc as history.csv has it. Each attempt forked warm, killed there."""
    config = kill_callback(tmp_path, monkeypatch)
    bindings = ("training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=10#training_loop.loggers=['wandb']"
                "#trainer.log_every_n_steps=1#training_loop.callbacks=['kill_at', 'LearningRateMonitor']")
    run = tmp_path / "run"
    argv = ["train", run, MLP, config, "-b", bindings]
    for kill_at, checkpoint, flush in [(13, 10, None), (78, 70, "0.01")]:
        monkeypatch.setenv("KILL_AT", str(kill_at))
        if flush:
            monkeypatch.setenv("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL", flush)
            monkeypatch.setenv("KILL_DELAY", "1")
        assert_killed(warm.start(argv))
        assert checkpoint_io.checkpoint_step(run) == checkpoint
    monkeypatch.delenv("KILL_AT")
    monkeypatch.delenv("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL")
    monkeypatch.delenv("KILL_DELAY")
    done = warm.train(*argv[1:], check=0)
    assert resume_point(done.stderr) == (2, 70)

    run_id = (run / runs.WANDB / runs.WANDB_ID).read_text().strip()
    attempts = sorted((run / runs.WANDB).glob("offline-run-*"))
    assert len(attempts) == 3 and all(folder.name.endswith("-" + run_id) for folder in attempts)
    files = [folder / f"run-{run_id}.wandb" for folder in attempts]
    assert {r.run.run_id for f in files for r in wandb_logger.records(f) if r.WhichOneof("record_type") == "run"} \
        == {run_id}
    rows = [(step, key, value) for f in files for step, values in wandb_logger.history(f)
            for key, value in values.items() if key != wandb_logger.STEP_KEY]
    lost, kept = (wandb_logger.history(f) for f in files[:2])
    assert lost == [] and max(step for step, values in kept if "lr-SGD" in values) > 70  # as each kill meant
    counts = Counter((step, key) for step, key, _value in rows)
    assert [pair for pair, n in counts.items() if n > 1] == []  # nothing twice
    journal = [json.loads(line) for line in (run / runs.WANDB / wandb_logger.JOURNAL).read_text().splitlines()]
    written = Counter((entry["step"], key) for entry in journal for key in entry["metrics"])
    assert max(written.values()) == 1 and set(written) == set(counts)  # the journal: what W&B holds, once
    assert "monotonically increasing" not in done.stderr  # no step offered to W&B twice
    assert sorted(step for step, key, _value in rows if key == "lr-SGD") == list(range(135))  # nothing skipped
    history = runs.read_history(run)
    assert [value for _step, key, value in sorted(rows) if key == "val_acc"] == [row["val_acc"] for row in history]

    summary = {item.key: item.value_json for r in wandb_logger.records(files[-1])
               if r.WhichOneof("record_type") == "summary" for item in r.summary.update}
    best = runs.read_json(run, runs.METRICS)["best"]
    assert float(summary["best_val_acc"]) == best["val_acc"]
    config_keys = {item.key for r in wandb_logger.records(files[-1]) if r.WhichOneof("record_type") == "config"
                   for item in r.config.update}
    assert "training_loop.n_epochs" in config_keys


def test_restart_removes_the_wandb_folder_only_where_runkit_made_it(tmp_path):
    """--restart removes wandb/ where it holds runkit's id file, and no W&B folder of the user's; the id is
    the kept one, else one made from the folder's path."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for run in (ours, theirs):
        (run / runs.WANDB).mkdir(parents=True)
        (run / runs.WANDB / "offline-run-x").mkdir()
    (ours / runs.WANDB / runs.WANDB_ID).write_text("ours-123\n")
    assert wandb_logger.run_id(ours) == "ours-123"  # kept: the folder moved elsewhere logs to the same W&B run
    runs.clear(ours)
    runs.clear(theirs)
    assert not (ours / runs.WANDB).exists() and (theirs / runs.WANDB / "offline-run-x").exists()
    assert wandb_logger.run_id(theirs) != wandb_logger.run_id(tmp_path / "elsewhere" / "theirs")
