"""Killed, preempted or stopped at any moment, a rerun ends with the history and metrics of an
uninterrupted run (CPU, deterministic mode): real processes, real SIGKILL and SIGUSR1."""
import os
import random
import signal
import time

import pytest

from conftest import REPO, tool
from helpers.kills import (
    alive,
    assert_killed,
    assert_resumed,
    kill_callback,
    random_kills,
    resume_point,
    start,
    wait_for_attempt,
)
from helpers.same_run import assert_same_run
from runkit.rundir import runs
from runkit.training import checkpoint_io

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

CNN = REPO / "configs" / "digits_cnn.gin"
MLP = REPO / "configs" / "digits_mlp.gin"
# about 2.5 s of training: 8 epochs of 23 steps (STEPS_PER_EPOCH), 184 in all, a checkpoint every 10 steps
BINDINGS = "training_loop.n_epochs=8#cnn.n_filters=32#training_loop.checkpoint_every_n_steps=10"
STEPS_PER_EPOCH = 23  # digits: 1437 training images in batches of 64


def train_cnn(run):
    return ["train", run, CNN, "-b", BINDINGS]


def test_a_kill_mid_epoch_loses_only_the_steps_since_the_periodic_checkpoint(tmp_path, monkeypatch, warm):
    """SIGKILL 3 steps after a periodic checkpoint (training_loop.checkpoint_every_n_steps = 10), in epoch 1
    and again in epoch 3: each rerun resumes at that checkpoint's step, mid-epoch, and the run ends with the
    uninterrupted run's history and metrics. Without the periodic checkpoints it would resume at an
    epoch's end instead."""
    config = kill_callback(tmp_path, monkeypatch)
    bindings = ("training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=10#mlp.dropout=0.1"
                "#digits.batch_size=64")  # 23 steps an epoch
    argv = lambda run: ["train", run, MLP, config, "-b", bindings]  # noqa: E731
    reference = tmp_path / "uninterrupted"
    warm.train(*argv(reference)[1:], check=0)
    run = tmp_path / "interrupted"
    resumed_from = None
    for kill_at, checkpoint, rows in [(13, 10, []), (52, 50, [23, 46])]:
        monkeypatch.setenv("KILL_AT", str(kill_at))
        err = assert_killed(warm.start(argv(run)))
        assert resume_point(err) == resumed_from
        assert checkpoint_io.checkpoint_step(run) == checkpoint, kill_at
        assert [row["step"] for row in runs.read_history(run)] == rows, kill_at
        resumed_from = (checkpoint // STEPS_PER_EPOCH + 1, checkpoint)
    monkeypatch.delenv("KILL_AT")
    rerun = warm.train(*argv(run)[1:], check=0)
    assert resume_point(rerun.stderr) == (3, 50)
    log = (run / runs.LOG).read_text()
    assert "resumed at epoch 1, step 10" in log and "resumed at epoch 3, step 50" in log
    assert_same_run(run, reference)


def test_killed_and_preempted_runs_resume_to_the_uninterrupted_result(tmp_path, warm):
    """Every run forked warm, stopped and killed there, as runbatch's runs are."""
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)  # printed on failure: rerun with random.Random(seed) to repeat the kill moments
    reference = tmp_path / "uninterrupted"
    straight = warm.train(reference, CNN, "-b", BINDINGS, check=0)
    window = runs.read_history(reference)[-1]["time"] / 4  # kill within the first quarter of what is left
    run = tmp_path / "interrupted"

    proc = warm.start(train_cnn(run))  # 1: SIGUSR1, as SLURM sends before preemption: checkpoint, then exit 128+10
    wait_for_attempt(run, 1, proc)
    time.sleep(rng.uniform(0.0, window))
    proc.send_signal(signal.SIGUSR1)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGUSR1, (seed, err)
    assert "stopped by SIGUSR1" in err and not (run / runs.ERROR).exists(), seed
    assert runs.status(run) == "stopped" and "stopped by SIGUSR1" in (run / runs.LOG).read_text()

    for attempt in (2, 3):  # 2, 3: SIGKILL at a random moment, mid-epoch or mid-write
        proc = warm.start(train_cnn(run))
        wait_for_attempt(run, attempt, proc)
        time.sleep(rng.uniform(0.0, window))
        proc.kill()
        assert_killed(proc)
        assert runs.status(run) != "finished", f"the run finished before kill {attempt} (seed {seed})"

    step = checkpoint_io.checkpoint_step(run)  # at least SIGUSR1's checkpoint
    resumed = warm.train(run, CNN, "-b", BINDINGS, check=0)
    assert_resumed(resumed.stderr, step, STEPS_PER_EPOCH)

    assert_same_run(run, reference, f"(seed {seed})")
    assert resumed.stdout.count("\n") == 1 and straight.stdout.count("\n") == 1
    assert runs.read_json(run, runs.META)["attempts"] == 4


def killed_and_rerun(tmp_path, config, bindings, kills, share, warm):
    """(uninterrupted run folder, interrupted run folder, seed): the second run is killed with -9 `kills` times,
    each at a random moment within `share` of the reference's training time and after its first checkpoint
    (helpers.kills.random_kills), then rerun to the end, which must resume from the last kill's checkpoint.
    Every run forked warm, and killed there, as runbatch's runs are."""
    argv = lambda run: ["train", str(run), str(config), "-b", bindings]  # noqa: E731
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)  # printed on failure: rerun with random.Random(seed) to repeat the kill moments
    reference = tmp_path / "uninterrupted"
    warm.train(*argv(reference)[1:], check=0)
    expected = runs.read_history(reference)
    run = tmp_path / "interrupted"
    step = random_kills(run, argv(run), rng, expected[-1]["time"] * share, kills, start=warm.start)
    rerun = warm.train(*argv(run)[1:], check=0)
    assert_resumed(rerun.stderr, step, expected[0]["step"])
    return reference, run, seed


def test_workers_with_random_augmentation_resume_exactly_after_kill_9(tmp_path, warm):
    """Images read from disk by 2 DataLoader workers with random crops and flips: 4 epochs of 9 steps (72
    training images in batches of 8), a checkpoint every 3 steps (measured: history.csv's steps 9, 18, ...);
    kill -9 at random moments (mid-epoch, mid-write), rerun, and the history equals an uninterrupted run's."""
    from image_folder import write_image_folder
    root = write_image_folder(tmp_path / "images")
    bindings = (f"image_folder.root='{root}'#training_loop.n_epochs=4#training_loop.checkpoint_every_n_steps=3"
                "#image_folder.batch_size=8#image_folder.image_size=12#cnn.dropout=0.2")
    reference, run, seed = killed_and_rerun(tmp_path, REPO / "configs" / "image_folder_cnn.gin", bindings,
                                            kills=2, share=1 / 3, warm=warm)
    assert_same_run(run, reference, f"(seed {seed})")
    assert runs.read_history(run)[-1]["val_acc"] > 0.5  # 3 classes: it learned from the images


def test_a_task_that_is_not_a_classifier_resumes_exactly_after_kill_9(tmp_path, warm):
    """The denoising autoencoder (its own metrics, noise drawn in training_step): kill -9, rerun, same history."""
    reference, run, seed = killed_and_rerun(tmp_path, REPO / "configs" / "digits_autoencoder.gin",
                                            "training_loop.n_epochs=6#training_loop.checkpoint_every_n_steps=7",
                                            kills=1, share=1 / 2, warm=warm)
    assert_same_run(run, reference, f"(seed {seed})")
    assert list(runs.read_history(run)[0]) == ["epoch", "step", "train_loss", "val_loss", "val_mse", "lr", "time"]


@pytest.mark.slow
def test_a_two_process_ddp_run_killed_with_9_resumes_exactly(tmp_path, monkeypatch):
    """DDP on 2 CPU processes (gloo): rank 0 SIGKILLs itself 3 steps after the periodic checkpoint at step 30
    (epoch 2); rank 1 dies with it; the rerun resumes at step 30 and ends as an uninterrupted 2-process run."""
    bindings = ("trainer.accelerator='cpu'#trainer.devices=2#trainer.strategy='ddp'#training_loop.n_epochs=4"
                "#training_loop.checkpoint_every_n_steps=10#mlp.dropout=0.1")
    config = kill_callback(tmp_path, monkeypatch)
    argv = lambda run: ["train", run, MLP, config, "-b", bindings]  # noqa: E731
    reference = tmp_path / "uninterrupted"
    tool(*argv(reference), check=0)
    run, pids = tmp_path / "interrupted", tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("KILL_AT", "33")
    monkeypatch.setenv("KILL_PIDS", str(pids))
    assert_killed(start(argv(run)))
    rank1 = int((pids / "rank1").read_text())
    deadline = time.monotonic() + 60
    while alive(rank1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(rank1), "rank 1 outlived rank 0"
    assert checkpoint_io.checkpoint_step(run) == 30 and [row["step"] for row in runs.read_history(run)] == [23]
    assert runs.status(run) != "finished"
    monkeypatch.delenv("KILL_AT")
    rerun = tool(*argv(run), check=0)
    assert resume_point(rerun.stderr) == (2, 30)
    assert_same_run(run, reference)
    assert [row["step"] for row in runs.read_history(run)] == [23, 46, 69, 92]


@pytest.mark.parametrize("trainer_bindings", [
    "trainer.accumulate_grad_batches=3#trainer.gradient_clip_val=0.5",
    pytest.param("trainer.val_check_interval=0.5#trainer.limit_train_batches=20", marks=pytest.mark.slow),
])
def test_stopped_at_chosen_steps_with_trainer_options_resumes_exactly(tmp_path, trainer_bindings, warm):
    """Lightning's own options stay exact across a stop: gradient accumulation (no checkpoint mid-way through
    an accumulation), clipping, validation twice an epoch, fewer batches an epoch. The run sends itself
    SIGUSR1 after a chosen optimizer step (tests/plugins/signal_at.py, once); every run forked warm."""
    bindings = f"training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=4#{trainer_bindings}"
    argv = lambda run, stop: [run, CNN, "-b", bindings, "-b", "training_loop.callbacks=['signal_at.SignalAt']"  # noqa: E731
                              f"#SignalAt.step={stop}#SignalAt.signal_name='SIGUSR1'#SignalAt.marker_dir='{run}.marks'"]
    reference = tmp_path / "uninterrupted"
    warm.train(*argv(reference, -1), check=0)  # the same callback, never firing
    for stop in (5, 13):
        run = tmp_path / f"stopped_at_{stop}"
        os.mkdir(f"{run}.marks")
        stopped = warm.train(*argv(run, stop), check=128 + signal.SIGUSR1)
        assert "stopped by SIGUSR1" in stopped.stderr and os.path.exists(f"{run}.marks/signalled_at_{stop}")
        warm.train(*argv(run, stop), check=0)
        assert_same_run(run, reference, f"(stopped at step {stop})")


@pytest.mark.parametrize("signum, during", [(signal.SIGINT, "training"),
                                            pytest.param(signal.SIGTERM, "imports", marks=pytest.mark.slow)])
def test_ctrl_c_and_a_signal_during_imports_stop_gracefully(tmp_path, signum, during, warm):
    """Ctrl-C stops like SIGTERM (a checkpoint, exit 128+N, status stopped, no traceback); a signal that comes
    while train is still importing is kept and acted on at the first step, not lost or fatal. The signal during
    training goes to a run forked warm; the one during imports needs a `train` of its own that imports, cold."""
    run = tmp_path / "run"
    if during == "training":
        proc = warm.start(train_cnn(run))
        wait_for_attempt(run, 1, proc)
    else:
        proc = start(train_cnn(run))
        time.sleep(0.5)  # train is importing torch and Lightning (seconds)
        assert not (run / runs.META).exists()
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert runs.status(run) == "stopped" and "Traceback" not in err
    assert f"stopped by {signal.Signals(signum).name}" in err and (run / runs.CHECKPOINTS / "last.ckpt").exists()
    warm.train(run, CNN, "-b", BINDINGS, check=0)


@pytest.mark.slow
def test_tensorboard_keeps_one_value_per_step_after_a_kill(tmp_path, warm):
    """Events a killed attempt wrote after its last checkpoint are purged when the rerun resumes."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    bindings = ("training_loop.n_epochs=6#training_loop.checkpoint_every_n_steps=100#trainer.log_every_n_steps=1"
                "#training_loop.callbacks=['LearningRateMonitor']")  # the rate at every step, to TensorBoard
    reference, run, seed = killed_and_rerun(tmp_path, REPO / "configs" / "digits_mlp.gin", bindings,
                                            kills=1, share=2 / 3, warm=warm)
    events = EventAccumulator(str(run / runs.TENSORBOARD))
    events.Reload()
    steps = [event.step for event in events.Scalars("lr-SGD")]
    assert steps == sorted(set(steps)) and len(steps) == runs.read_history(reference)[-1]["step"], seed
