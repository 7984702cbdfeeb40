"""LightningModules in the idioms of the most-used public Lightning code (tests/projects/public_idioms: torchmetrics
Accuracy, MeanMetric and a MaxMetric reset in on_train_start, ReduceLROnPlateau on `val/loss` with
EarlyStopping, manual optimization with two optimizers, StochasticWeightAveraging with LearningRateMonitor),
named by import path: killed with -9 three times, stopped with SIGTERM in the middle of an epoch and continued
from 5 to 6 epochs, each run ends with the uninterrupted run's history and metrics, on pytorch_lightning and on
lightning. Testing the best checkpoint leaves the run's record alone; what cannot be exact is said."""
import json
import math
import random
import shutil
from pathlib import Path

import pytest

from conftest import REPO, without_time
from helpers.kills import resume_point
from helpers.same_run import assert_same_run
from runkit.rundir import runs

PROJECT = REPO / "tests" / "projects" / "public_idioms"
BATCHES = 12  # an epoch: Blobs' 96 training samples in batches of 8; a checkpoint every 3 steps (the configs)
OPTIMIZERS = {"adversarial": 2}  # optimizer steps a batch (Lightning's global step counts each), else 1
CALLBACKS = {"classifier": ["EarlyStopping"], "adversarial": [],
             "averaged": ["StochasticWeightAveraging", "LearningRateMonitor"]}


@pytest.fixture
def project(warm, request):
    """(the project's folder, the kill and signal callbacks' paths): public_idioms as it is (pytorch_lightning), or
    a copy written on lightning (`import lightning.pytorch as pl`, the one line changed) in the warm runs' code
    folder. Every run of these tests is forked warm (tests/helpers/warm.py): they check what a run ends with."""
    package = getattr(request, "param", "pytorch_lightning")
    if package == "pytorch_lightning":
        return PROJECT, "kill_at.KillAt", "signal_at.SignalAt"
    name = "public_idioms_unified"
    copy = Path(warm.code) / name
    if not copy.exists():
        shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for path in copy.iterdir():
            text = path.read_text().replace("import pytorch_lightning as pl\n", "import lightning.pytorch as pl\n")
            path.write_text(text.replace("'public_idioms.", f"'{name}."))
    return copy, "kill_at.LightningKillAt", "signal_at.LightningSignalAt"


def mid_epoch_kill(rng, epoch, per_batch):
    """A step of `epoch` to kill at whose last checkpoint (every 3 steps, at a batch's end) is in its middle."""
    every, length = math.lcm(3, per_batch), BATCHES * per_batch
    return rng.choice([s for s in range(length * (epoch - 1), length * epoch, per_batch)
                       if s % every and (s - s % every) % length])


def interrupted_every_way(tmp_path, warm, project, case):
    """(the uninterrupted 6-epoch run, the interrupted one, the kill moments' seed). The interrupted run asks for
    5 epochs and is killed with -9 mid-epoch 1, just after the end of epoch 2 (it resumes from an epoch's end)
    and mid-epoch 3, stopped with SIGTERM mid-epoch 4, finished, then continued to 6 epochs. Each rerun must
    resume where the interruption before it left the last checkpoint."""
    root, killer, signaller = project
    config = root / f"{case}.gin"
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)  # printed on failure: random.Random(seed) repeats the moments
    per_batch = OPTIMIZERS.get(case, 1)
    every, length = math.lcm(3, per_batch), BATCHES * per_batch
    kills = [mid_epoch_kill(rng, 1, per_batch), length * 2 + per_batch * rng.choice([1, 2]),
             mid_epoch_kill(rng, 3, per_batch)]
    stop = rng.choice(range(length * 3 + per_batch, length * 4, per_batch))
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    warm.train(reference, config, check=0)
    callbacks = CALLBACKS[case] + [killer, signaller]
    kill, signal_at = killer.rsplit(".", 1)[1], signaller.rsplit(".", 1)[1]
    bindings = [f"training_loop.callbacks={callbacks}#{kill}.steps={kills}#{kill}.marker_dir='{tmp_path}'"
                f"#{signal_at}.step={stop}#{signal_at}.marker_dir='{tmp_path}'"]
    argv = [run, config, "-b", bindings[0]]
    resumed_from = None
    for step in kills:
        done = warm.train(*argv, "-b", "training_loop.n_epochs=5")
        assert done.returncode == -9, (seed, done.stderr)
        assert (tmp_path / f"killed_at_{step}").exists() and resume_point(done.stderr) == resumed_from, seed
        last = step - step % every
        resumed_from = (last // length + 1, last)
    done = warm.train(*argv, "-b", "training_loop.n_epochs=5", check=143)
    assert resume_point(done.stderr) == resumed_from and "stopped by SIGTERM" in done.stderr, seed
    done = warm.train(*argv, "-b", "training_loop.n_epochs=5", check=0)
    assert resume_point(done.stderr) == (stop // length + 1, stop), (seed, done.stderr)
    assert runs.status(run) == "finished"
    done = warm.train(*argv, "-b", "training_loop.n_epochs=6", check=0)
    assert resume_point(done.stderr) is not None, seed
    return reference, run, seed


PACKAGES = pytest.mark.parametrize("project", ["pytorch_lightning", "lightning"], indirect=True)


@pytest.mark.slow
@PACKAGES
def test_a_template_shaped_classifier_resumes_exactly(tmp_path, warm, project):
    """torchmetrics Accuracy and MeanMetric logged as objects, a MaxMetric reset in on_train_start, a plateau
    schedule (patience 1) on `val/loss` that cuts the rate during the run, EarlyStopping on it (it stops the
    run at epoch 5, which the continued run must see too)."""
    reference, run, seed = interrupted_every_way(tmp_path, warm, project, "classifier")
    assert_same_run(run, reference, f"(seed {seed})")
    history = runs.read_history(reference)
    assert len({row["lr"] for row in history}) >= 2, history  # the plateau schedule cut the rate


@pytest.mark.slow
@PACKAGES
def test_manual_optimization_with_two_optimizers_resumes_exactly(tmp_path, warm, project):
    reference, run, seed = interrupted_every_way(tmp_path, warm, project, "adversarial")
    assert_same_run(run, reference, f"(seed {seed})")
    assert len(runs.read_history(run)) == 6


def rates_logged(run):
    """{step: rate} of what LearningRateMonitor logged to TensorBoard (the last value at a step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run / runs.TENSORBOARD))
    events.Reload()
    return {event.step: event.value for event in events.Scalars("lr-Adam")}


@pytest.mark.slow
@PACKAGES
def test_stochastic_weight_averaging_with_a_rate_monitor_resumes_exactly(tmp_path, warm, project):
    """SWA swaps in its own schedule at the start of epoch 3 (in on_train_epoch_start, which Lightning skips in
    an epoch it resumes into); the module reads the rate there too (`train/epoch_lr`)."""
    reference, run, seed = interrupted_every_way(tmp_path, warm, project, "averaged")
    assert_same_run(run, reference, f"(seed {seed})")
    assert rates_logged(run) == rates_logged(reference), seed
    assert sorted(rates_logged(run)) == [BATCHES * epoch for epoch in range(6)]


@pytest.mark.slow
def test_two_uninterrupted_runs_of_one_spec_are_equal(tmp_path, warm, project):
    root, _killer, _signaller = project
    for name in ("first", "second"):
        warm.train(tmp_path / name, root / "classifier.gin", check=0)
    assert_same_run(tmp_path / "second", tmp_path / "first")


def test_testing_the_best_checkpoint_keeps_the_history_and_a_rerun_does_nothing(tmp_path, warm, project):
    """Best (epoch 1) is not last (epoch 5): testing best.ckpt leaves every row, and the rerun trains nothing."""
    root, _killer, _signaller = project
    config = root / "classifier.gin"
    warm.train(tmp_path / "fit", config, check=0)
    run = tmp_path / "tested"
    first = warm.train(run, config, "-b", "training_loop.test=True", check=0)
    metrics = runs.read_json(run, runs.METRICS)
    assert metrics["best"]["epoch"] < metrics["final"]["epoch"] == runs.read_history(run)[-1]["epoch"]
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(tmp_path / "fit"))
    assert set(metrics["test"]) == {"test/loss", "test/acc"}
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    again = warm.train(run, config, "-b", "training_loop.test=True", check=0)
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before
    assert runs.read_json(run, runs.META)["attempts"] == 1


@pytest.mark.slow
def test_a_callback_that_adds_an_epoch_is_counted_as_done(tmp_path, warm, project):
    """SWA with BatchNorm in the model trains one more epoch (its BatchNorm update): the finished run reruns as
    a no-op, and continuing it to more epochs trains, saying the continued schedule cannot be exact."""
    root, _killer, _signaller = project
    run, config = tmp_path / "run", root / "averaged.gin"
    bindings = ["-b", "Averaged.batch_norm=True#training_loop.loggers=['csv']"]  # LearningRateMonitor needs a logger
    warm.train(run, config, *bindings, "-b", "training_loop.n_epochs=3", check=0)
    assert [row["epoch"] for row in runs.read_history(run)] == [1, 2, 3, 4]
    assert runs.read_json(run, runs.META)["epochs_added"] == 1
    warm.train(run, config, *bindings, "-b", "training_loop.n_epochs=3", check=0)
    assert runs.read_json(run, runs.META)["attempts"] == 1
    continued = warm.train(run, config, *bindings, "-b", "training_loop.n_epochs=4", check=0)
    assert len(runs.read_history(run)) == 5 and runs.status(run) == "finished"
    said = runs.read_json(run, runs.META)["not_exact"]
    assert any("continued from 3 to 4 epochs: a callback adds 1 epoch" in line for line in said), said
    assert "train: resumes approximately: continued from 3 to 4 epochs" in continued.stderr


def test_state_outside_the_checkpoint_and_a_schedule_sized_from_the_epochs_are_said(tmp_path, warm, project):
    root, _killer, _signaller = project
    run, config = tmp_path / "run", root / "buffered.gin"
    warm.train(run, config, check=0)
    said = runs.read_json(run, runs.META)["not_exact"]
    assert said == ["Buffered.sampler.examples (a list of 16 tensors) changes during training and no checkpoint "
                    "holds it: register it as a buffer, or save it in on_save_checkpoint"]
    assert f"train: resumes approximately: {said[0]}" in (run / runs.LOG).read_text()
    warm.train(run, config, "-b", "training_loop.n_epochs=3", check=0)
    said = runs.read_json(run, runs.META)["not_exact"]
    assert "continued from 2 to 3 epochs: CosineAnnealingLR was sized for 2 epochs and is restored as it was" in said
