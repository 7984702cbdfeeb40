"""A project of your own (examples/my_project: plain Lightning, a plain shuffled DataLoader with 2 workers
and noise drawn in __getitem__, classes named by import path): killed with -9 in the middle of epochs, the
rerun ends with the uninterrupted run's history and metrics."""
import os
import subprocess

import pytest
from conftest import REPO, tool, without_time

from runkit.rundir import runs

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = REPO / "examples" / "my_project" / "my_project.gin"
# 10 steps an epoch, 4 epochs, a checkpoint every 3 steps; the kills come 2 steps after one
SMALL = "MyData.n_train=640#training_loop.n_epochs=4#training_loop.checkpoint_every_n_steps=3#training_loop.loggers=[]"
KILLS = (5, 17, 29)


@pytest.fixture
def project_path(monkeypatch):
    path = os.pathsep.join([str(REPO / "examples"), str(REPO / "tests" / "plugins"), os.environ["PYTHONPATH"]])
    monkeypatch.setenv("PYTHONPATH", path)


def killed_three_times(tmp_path, config, bindings, killer="kill_at.KillAt"):
    """(reference run folder, interrupted run folder): the second killed at each step of KILLS, then rerun."""
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    tool("train", reference, config, "-b", bindings, check=0)
    kill = (f"training_loop.callbacks=['{killer}']#{killer.rsplit('.', 1)[1]}.steps={list(KILLS)}"
            f"#{killer.rsplit('.', 1)[1]}.marker_dir='{tmp_path}'")
    for attempt, step in enumerate(KILLS, 1):
        done = tool("train", run, config, "-b", bindings, "-b", kill)
        assert done.returncode == -9, done.stderr
        assert (tmp_path / f"killed_at_{step}").exists()
        assert runs.read_json(run, runs.META)["attempts"] == attempt
    resumed = tool("train", run, config, "-b", bindings, "-b", kill, check=0)
    assert "resumed at epoch 3, step 27" in resumed.stderr
    return reference, run


def assert_same_run(reference, run):
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(reference))
    final, expected = (runs.read_json(r, runs.METRICS) for r in (run, reference))
    for part in ("best", "final"):
        assert without_time([final[part]]) == without_time([expected[part]])
    assert final["test"] == expected["test"]


@pytest.mark.slow
def test_the_example_killed_three_times_mid_epoch_resumes_exactly(tmp_path, project_path):
    reference, run = killed_three_times(tmp_path, EXAMPLE, SMALL)
    assert_same_run(reference, run)
    meta = runs.read_json(run, runs.META)
    assert meta["data_resume"] == {"loader": "MyData.train_dataloader", "exact": True}
    assert "data: MyData.train_dataloader resumes exactly" in (run / runs.LOG).read_text()
