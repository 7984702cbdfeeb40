"""Checkpoints that come back: a module whose save_hyperparameters() holds an nn.Module and partials (as
lightning-hydra-template's do) resumes after kill -9 and tests its best checkpoint, because the run's own
checkpoints are unpickled whole (docs/run-folder.md, "Whose checkpoints are unpickled"); a checkpoint that
would not load back stops the run at its first save, in one line; a user's ModelCheckpoint leaves no digest
of a file it deleted."""
import os

import pytest

from conftest import REPO, without_time
from helpers.kills import resume_point
from runkit.rundir import checkpoints, runs
from runkit.training import checkpoint_io

pytestmark = pytest.mark.usefixtures("one_thread")

# 10 steps an epoch, 4 epochs, a checkpoint every 3 steps
TEMPLATE = """training_loop.task = 'template_module.ObjectsModule'
ObjectsModule.net = @template_module.Net()
template_module.Net.n_features = 4
template_module.Net.hidden = 32
ObjectsModule.optimizer = @torch.optim.Adam
torch.optim.Adam.lr = 0.01
ObjectsModule.scheduler = @torch.optim.lr_scheduler.StepLR
torch.optim.lr_scheduler.StepLR.step_size = 2
torch.optim.lr_scheduler.StepLR.gamma = 0.5
training_loop.data = 'my_project.lit.MyData'
training_loop.test = True
MyData.n_train = 640
"""
BINDINGS = "training_loop.n_epochs=4#training_loop.checkpoint_every_n_steps=3#training_loop.loggers=[]"


@pytest.fixture
def config(tmp_path, monkeypatch):
    """The template-shaped module on the example's data (examples/ and tests/plugins on PYTHONPATH)."""
    path = os.pathsep.join([str(REPO / "examples"), str(REPO / "tests" / "plugins"), os.environ["PYTHONPATH"]])
    monkeypatch.setenv("PYTHONPATH", path)
    (tmp_path / "template.gin").write_text(TEMPLATE)
    return tmp_path / "template.gin"


@pytest.mark.slow
def test_hyperparameters_holding_a_module_and_partials_resume_exactly_after_kill_9(tmp_path, config, warm):
    import torch
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    warm.train(reference, config, "-b", BINDINGS, check=0)
    kill = f"training_loop.callbacks=['kill_at.KillAt']#KillAt.steps=[17]#KillAt.marker_dir='{tmp_path}'"
    assert warm.train(run, config, "-b", BINDINGS, "-b", kill).returncode == -9
    last = run / runs.CHECKPOINTS / checkpoints.LAST
    with pytest.raises(Exception, match="Weights only load failed"):  # what a file from elsewhere gets
        torch.load(last, weights_only=True)
    assert not checkpoint_io.weights_only(last)  # the run's own: unpickled whole

    resumed = warm.train(run, config, "-b", BINDINGS, "-b", kill, check=0)
    assert resume_point(resumed.stderr) == (2, 15), resumed.stderr
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(reference))
    final, expected = (runs.read_json(r, runs.METRICS) for r in (run, reference))
    assert without_time([final["best"], final["final"]]) == without_time([expected["best"], expected["final"]])
    assert final["test"] == expected["test"] and "test/mae" in final["test"]  # best.ckpt, unpickled whole


def test_only_a_checkpoint_with_its_matching_digest_is_unpickled_whole(tmp_path):
    path = tmp_path / checkpoints.LAST
    checkpoints.save(path, b"the run's own bytes")
    assert not checkpoint_io.weights_only(path) and checkpoint_io.weights_only(None)
    path.write_bytes(b"bytes from elsewhere")  # the digest no longer matches
    assert checkpoint_io.weights_only(path)
    checkpoints.save(path, b"the run's own bytes")
    os.unlink(f"{path}{checkpoints.DIGEST}")  # no digest: a file put there by hand, an old runkit's
    assert checkpoint_io.weights_only(path)


def test_a_checkpoint_that_would_not_load_back_stops_the_run_at_its_first_save(tmp_path, config, warm):
    run = tmp_path / "run"
    done = warm.train(run, config, "-b", BINDINGS, "-b", "training_loop.callbacks=['unit_state.Margin']", check=2)
    said = [line for line in done.stderr.splitlines() if line.startswith("train: ")]
    assert len(said) == 1 and "\x1b" not in done.stderr, done.stderr
    assert said[0].startswith("train: last.ckpt would not load back when the run resumes: checkpoint['callbacks']"
                              "['Margin']['margin'] (TypeError: Length.__new__() missing 1 required positional "
                              "argument: 'unit'); leave it out"), said
    assert not (run / runs.CHECKPOINTS / checkpoints.LAST).exists()
    assert runs.status(run) == "failed" and runs.read_history(run) == []  # the first save: step 3


def test_a_users_model_checkpoint_leaves_no_digest_of_what_it_deleted(tmp_path, warm):
    mine = tmp_path / "mine"
    warm.train(tmp_path / "run", REPO / "configs" / "digits_mlp.gin", "-b",
               "training_loop.n_epochs=3#training_loop.loggers=[]#training_loop.callbacks=['ModelCheckpoint']"
               f"#ModelCheckpoint.dirpath='{mine}'#ModelCheckpoint.save_top_k=1#ModelCheckpoint.monitor='epoch'"
               "#ModelCheckpoint.mode='max'", check=0)
    files = sorted(p.name for p in mine.iterdir())
    assert len(files) == 2 and files[0].startswith("epoch=2-"), files  # epochs 1 and 2's files went
    assert files[1] == files[0] + checkpoints.DIGEST, files
    assert not checkpoint_io.weights_only(mine / files[0])
