"""A run resumed on another number of processes continues from its checkpoint and says it is approximate."""
import csv
import io
import json

import pytest

from conftest import REPO, tool
from helpers.kills import assert_killed, kill_callback, resume_point, start
from runkit.rundir import runs
from runkit.training import checkpoint_io

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

MLP = REPO / "configs" / "digits_mlp.gin"


@pytest.mark.slow
def test_a_ddp_run_of_2_processes_killed_and_resumed_on_1_continues_approximately(tmp_path, monkeypatch):
    """DDP on 2 CPU processes (gloo), 23 steps an epoch each: SIGKILL after step 33 (checkpoint at 30, in
    epoch 2); the rerun on 1 process resumes at step 30, trains the rest of epoch 2 and epoch 3 at 45 steps
    an epoch (the order rebuilt for one process), and train.log, meta.json and collect say approximate."""
    config = kill_callback(tmp_path, monkeypatch)
    bindings = ("trainer.accelerator='cpu'#trainer.strategy='ddp'#training_loop.n_epochs=3"
                "#training_loop.checkpoint_every_n_steps=10#training_loop.loggers=[]")
    run = tmp_path / "run"
    monkeypatch.setenv("KILL_AT", "33")
    assert_killed(start(["train", run, MLP, config, "-b", bindings + "#trainer.devices=2"]))
    assert checkpoint_io.checkpoint_step(run) == 30 and [row["step"] for row in runs.read_history(run)] == [23]
    monkeypatch.delenv("KILL_AT")
    rerun = tool("train", run, MLP, config, "-b", bindings + "#trainer.devices=1", check=0)
    assert resume_point(rerun.stderr) == (2, 30)
    assert [row["step"] for row in runs.read_history(run)] == [23, 68, 113]  # 30 + (45 - 7), then 45
    said = "approximate: world size 2 → 1"
    assert said in (run / runs.LOG).read_text() and said in rerun.stderr
    meta = runs.read_json(run, runs.META)
    assert meta["world_resume"] == said and meta["attempts"] == 2
    assert runs.status(run) == "finished" and json.loads(rerun.stdout)["final"]["epoch"] == 3
    row, = csv.DictReader(io.StringIO(tool("collect", run, check=0).stdout))
    assert row["resume"] == "approximate"
