"""Checkpoints written off the training loop stay sound: kill -9 while a background save is being written
resumes from the previous sound checkpoint and ends equal to the uninterrupted run; SIGTERM while one is
written leaves a complete checkpoint of the step the run stopped at, written before the process exits. A
CheckpointIO plugin of the user's wraps runkit's writer, or is refused in one line (exit 2)."""
import os
import signal
import time

import pytest

from conftest import REPO, without_time
from helpers.kills import resume_point
from runkit.rundir import checkpoints, runs

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = REPO / "examples" / "my_project" / "my_project.gin"
# 10 steps an epoch, 3 epochs: checkpoints at steps 3, 6, 9, 10 (the epoch's end), 12, 15, 18, 20, 21, ...
SMALL = "MyData.n_train=640#training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=3#training_loop.loggers=[]"


def environment():
    """examples/ and tests/plugins on PYTHONPATH, as the warm process has them: every run here is forked warm."""
    path = os.pathsep.join([str(REPO / "examples"), str(REPO / "tests" / "plugins"), os.environ["PYTHONPATH"]])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, warm):
    run = tmp_path_factory.mktemp("async") / "uninterrupted"
    warm.train(run, EXAMPLE, "-b", SMALL, check=0, env=environment())
    return run


def hold(tmp_path, **settings):
    bound = "".join(f"#HoldWriter.{name}={value!r}" for name, value in settings.items())
    return f"training_loop.callbacks=['hold_writer.HoldWriter']#HoldWriter.marker_dir='{tmp_path}'{bound}"


def assert_same_run(reference, run):
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(reference))
    final, expected = (runs.read_json(r, runs.METRICS) for r in (run, reference))
    assert without_time([final["best"], final["final"]]) == without_time([expected["best"], expected["final"]])
    assert final["test"] == expected["test"]


def partial_files(run):
    return [p.name for p in (run / runs.CHECKPOINTS).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_a_kill_9_while_a_save_is_written_resumes_from_the_previous_sound_checkpoint(tmp_path, reference, warm):
    """The save of step 12 is held for a second while the loop trains on (so it must be written from a copy of
    step 12's state); the save of step 15 is held until the process kills itself at step 17 (the loop went
    on, waiting only for the copy): step 12's checkpoint is the sound one, and the run ends exactly."""
    run = tmp_path / "interrupted"
    argv = [run, EXAMPLE, "-b", SMALL, "-b", hold(tmp_path, steps=[12], until_killed=[15], kill_at=17)]
    killed = warm.train(*argv, env=environment())
    assert killed.returncode == -9, killed.stderr
    assert all((tmp_path / name).exists() for name in ("writing_at_12", "writing_at_15", "killed_at_17"))
    assert partial_files(run), "the kill did not land while step 15's checkpoint was being written"

    resumed = warm.train(*argv, check=0, env=environment())
    assert resume_point(resumed.stderr) == (2, 12), resumed.stderr
    assert_same_run(reference, run)
    assert partial_files(run) == []


@pytest.mark.slow
def test_sigterm_while_a_save_is_written_leaves_the_stop_checkpoint_complete(tmp_path, reference, warm):
    """SIGTERM while step 15's save is held: the run stops after the step it is in, and its stop checkpoint,
    itself held in the writer, is complete (with its digest) before the process exits."""
    run = tmp_path / "interrupted"
    argv = ["train", run, EXAMPLE, "-b", SMALL, "-b", hold(tmp_path, steps=[15, 16, 17, 18], seconds=1.5)]
    proc = warm.start(argv, env=environment())
    deadline = time.monotonic() + 120
    while not (tmp_path / "writing_at_15").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    last = run / runs.CHECKPOINTS / checkpoints.LAST
    assert checkpoints.trusted(last) and partial_files(run) == []

    resumed = warm.train(*argv[1:], check=0, env=environment())
    _epoch, step = resume_point(resumed.stderr)
    assert step > 15 and (tmp_path / f"writing_at_{step}").exists(), (step, resumed.stderr)
    assert_same_run(reference, run)


def plugin_config(tmp_path, line):
    config = tmp_path / "plugin.gin"
    config.write_text(f"import checkpoint_plugins\n{line}\n")
    return config


def test_a_wrapping_checkpoint_plugin_of_the_users_wraps_runkits_writer(tmp_path, warm):
    run, saved = tmp_path / "run", tmp_path / "saved.txt"
    config = plugin_config(tmp_path, f"trainer.plugins = [@SavedPaths()]\nSavedPaths.log = '{saved}'")
    warm.train(run, REPO / "configs" / "digits_mlp.gin", config, "-b",
         "training_loop.n_epochs=2#training_loop.loggers=[]", check=0, env=environment())
    folder = run / runs.CHECKPOINTS
    assert saved.read_text().splitlines() == [str(folder / "best.ckpt")] * 2  # each epoch improved: best, copied
    assert all(checkpoints.trusted(folder / name) for name in (checkpoints.LAST, "best.ckpt", checkpoints.PREVIOUS))


@pytest.mark.parametrize("plugin, said", [
    ("AsyncCheckpointIO", "trainer.plugins: AsyncCheckpointIO is not needed: runkit writes checkpoints off the "
                          "training loop already"),
    ("TorchCheckpointIO", "trainer.plugins: TorchCheckpointIO would replace runkit's checkpoint writer")])
def test_a_checkpoint_plugin_that_would_replace_runkits_writer_is_refused_in_one_line(tmp_path, plugin, said, warm):
    run = tmp_path / "run"
    config = plugin_config(tmp_path, f"trainer.plugins = [@{plugin}()]")
    done = warm.train(run, REPO / "configs" / "digits_mlp.gin", config, check=2, env=environment())
    assert done.stderr.startswith(f"train: {said}") and done.stderr.count("\n") == 1, done.stderr
    assert not run.exists()
